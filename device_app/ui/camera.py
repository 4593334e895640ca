"""Optional camera scanning: only offered when Kivy has a camera provider and a camera exists.

Frames are read from the camera texture twice a second and decoded with zxing-cpp on a worker
thread (device_app.core.qr); the first enrollment link found is handed to the app.
"""

from __future__ import annotations

import glob
import threading

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import StringProperty
from kivy.uix.screenmanager import Screen
from kivy.utils import platform

from device_app.core.qr import NoQRCode


def camera_available(source: str | None = None) -> bool:
    if source:  # --camera: an index or a video file, read with OpenCV
        return True
    if platform == "linux" and not glob.glob("/dev/video*"):
        return False  # no camera: do not even probe Kivy's providers (they log import errors)
    try:
        from kivy.core.camera import Camera as CoreCamera
    except Exception:  # a broken provider (e.g. OpenCV 5) must not stop the app
        return False
    if CoreCamera is None:
        return False
    return True


class ScanScreen(Screen):
    status = StringProperty("Point the camera at the enrollment QR code.")

    def on_enter(self) -> None:
        from kivy.uix.camera import Camera
        self._camera = Camera(play=True, resolution=(640, 480))
        self.ids.viewfinder.add_widget(self._camera)
        self._busy = False
        Clock.schedule_interval(self._grab, 0.5)

    def on_leave(self) -> None:
        Clock.unschedule(self._grab)
        if getattr(self, "_camera", None) is not None:
            self._camera.play = False
            self.ids.viewfinder.clear_widgets()
            self._camera = None

    def _grab(self, _dt: float) -> None:
        texture = self._camera.texture if self._camera else None
        if texture is None or self._busy:
            return
        from PIL import Image
        image = Image.frombytes("RGBA", texture.size, texture.pixels)
        self._busy = True
        threading.Thread(target=self._decode, args=(image,), daemon=True).start()

    def _decode(self, image) -> None:
        from device_app.core.qr import decode_image
        try:
            text = decode_image(image)
        except NoQRCode:
            text = ""
        Clock.schedule_once(lambda _dt: self._found(text))

    def _found(self, text: str) -> None:
        self._busy = False
        if text and self.manager and self.manager.current == "scan":
            App.get_running_app().enroll_text(text)
