"""Scan QR code: camera frames through OpenCV (the optional camera extra), decoded on a worker
thread by device_app.core.frames; the first enrollment link found is handed to the app.

Offered only where it can work: zxing-cpp is there, and ``--camera SOURCE`` (an index or a
video file) was given, or OpenCV is installed and (on Linux) a /dev/video* device exists. The preview shows every few
frames; decoding never runs on the UI thread.
"""

from __future__ import annotations

import glob
import threading
import time

from kivy.app import App
from kivy.clock import Clock
from kivy.graphics.texture import Texture
from kivy.properties import StringProperty
from kivy.uix.image import Image
from kivy.uix.screenmanager import Screen
from kivy.utils import platform


def camera_available(source: str | None = None) -> bool:
    from device_app.core.qr import available
    if not available():  # nothing could read the frames
        return False
    if source:  # --camera: an index or a video file
        return True
    if platform == "linux" and not glob.glob("/dev/video*"):
        return False  # no camera: nothing to offer
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


class ScanScreen(Screen):
    status = StringProperty("Point the camera at the enrollment QR code.")

    def on_enter(self) -> None:
        self.status = "Point the camera at the enrollment QR code."
        self._stop = threading.Event()
        self._preview = Image(fit_mode="contain")
        self.ids.viewfinder.add_widget(self._preview)
        source = App.get_running_app().camera_source or "0"
        threading.Thread(target=self._run, args=(source, self._stop), daemon=True,
                         name="ciba-camera").start()

    def on_leave(self) -> None:
        self._stop.set()
        self.ids.viewfinder.clear_widgets()

    def _run(self, source: str, stop: threading.Event) -> None:
        from device_app.core.frames import CameraUnavailable, FrameSource, enrollment_link_in
        try:
            frames = FrameSource(source)
        except CameraUnavailable as exc:
            Clock.schedule_once(lambda _dt: setattr(self, "status", str(exc)))
            return
        paced = not str(source).isdigit()  # a file plays at about camera speed
        try:
            for index, frame in enumerate(frames):
                if stop.is_set():
                    return
                if index % 3 == 0:
                    Clock.schedule_once(lambda _dt, f=frame: self._show(f))
                    link = enrollment_link_in(frame)
                    if link:
                        Clock.schedule_once(lambda _dt: self._found(link))
                        return
                if paced:
                    time.sleep(1 / 30)
            Clock.schedule_once(lambda _dt: setattr(self, "status", "No enrollment QR code seen."))
        finally:
            frames.close()

    def _show(self, frame) -> None:
        height, width = frame.shape[:2]
        texture = Texture.create(size=(width, height), colorfmt="bgr")
        texture.blit_buffer(frame[::-1].tobytes(), colorfmt="bgr", bufferfmt="ubyte")
        self._preview.texture = texture

    def _found(self, text: str) -> None:
        if self.manager and self.manager.current == "scan":
            App.get_running_app().enroll_text(text)
