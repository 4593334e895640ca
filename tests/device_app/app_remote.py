"""The test side of app_driver.py: start the real app under Xvfb and send it commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.screenshots import screenshot_path

HERE = Path(__file__).resolve().parent
XVFB_SCREEN = "-screen 0 1024x900x24"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppRemote:
    """The device app in a subprocess under xvfb-run, remote-controlled over a local socket."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict | None = None,
                 session_bus: bool = False) -> None:
        self.port = free_port()
        self.log_path = log_path
        environment = dict(os.environ, **(env or {}))
        environment.pop("SDL_VIDEODRIVER", None)  # must render on the Xvfb display, never "dummy"
        environment.setdefault("KIVY_HOME", str(data_dir.parent / "kivy-home"))
        self.log = open(log_path, "w")
        app = [sys.executable, str(HERE / "app_driver.py"), "--control-port", str(self.port),
               "--data-dir", str(data_dir)]
        if session_bus:  # a D-Bus session bus of its own with a real notification daemon (dunst)
            app = ["dbus-run-session", "--", "sh", "-c", 'dunst & exec "$@"', "sh", *app]
        else:
            environment.pop("DBUS_SESSION_BUS_ADDRESS", None)
        self.proc = subprocess.Popen(
            ["xvfb-run", "-a", "-s", XVFB_SCREEN, *app],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        self.sock = self._connect(timeout=60)
        self.stream = self.sock.makefile("rw")

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited ({self.proc.returncode}); see {self.log_path}")
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=30)
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the app did not start; see {self.log_path}")

    def call(self, cmd: str, **args):
        self.stream.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        self.stream.flush()
        answer = json.loads(self.stream.readline())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def state(self) -> dict:
        return self.call("state")

    def press(self, id: str, card: str | None = None) -> str:
        return self.call("press", id=id, card=card)

    def wait_state(self, condition, timeout: float = 15.0) -> dict:
        """Poll the app's state until ``condition(state)`` holds; the state."""
        deadline = time.monotonic() + timeout
        state = self.state()
        while not condition(state):
            if time.monotonic() > deadline:
                raise AssertionError(f"app state not reached in {timeout}s: {json.dumps(state, indent=1)}")
            time.sleep(0.1)
            state = self.state()
        return state

    def close(self) -> None:
        try:
            self.call("quit")
            self.proc.wait(10)
        except Exception:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # xvfb-run, its Xvfb and the app
            self.proc.wait(10)
        self.sock.close()
        self.log.close()


# helpers for the tests that drive the app ------------------------------------------------

def connected(state: dict) -> bool:
    return state["connection"].endswith("Connected")


def card_for(state: dict, binding_message: str) -> dict | None:
    """The Home card showing ``binding_message`` (the test's handle on a request)."""
    return next((c for c in state["cards"] if c["binding_message"] == binding_message), None)


def open_qr_image(app: AppRemote, png: Path) -> None:
    """Welcome → "Open QR image…" → type the image's path into the picker → Open."""
    app.press("open_image_button")
    app.wait_state(lambda s: s["popups"] == ["FilePickerPopup"])
    app.call("choose_file", path=str(png))
    app.press("chooser_open")


def paste_link(app: AppRemote, link: str) -> None:
    """Welcome → "Paste enrollment link" → type the link → Enroll."""
    app.press("paste_button")
    app.wait_state(lambda s: s["popups"] == ["PastePopup"])
    app.call("set_text", id="link_input", text=link)
    app.press("link_enroll")


def enroll_from_qr_image(app: AppRemote, provider, tmp_path: Path, screenshot: bool = False,
                         push: str = "websocket", continue_: bool = True) -> dict:
    """Welcome → "Open QR image…" → type the QR PNG's path → Open → Continue → Home."""
    png = tmp_path / "enroll-qr.png"
    provider.enrollment_png(png)
    state = app.wait_state(lambda s: s["screen"] == "welcome")
    assert not state["accounts"]
    if screenshot:
        app.call("screenshot", path=str(screenshot_path("welcome.png", tmp_path)))
    if push != "websocket":  # the push channel hides under "More options"
        app.press("more_options")
        app.press(f"push_{push}")
    open_qr_image(app, png)
    state = app.wait_state(lambda s: s["enrolled"], timeout=20)
    if not continue_:
        return state
    app.press("continue_button")
    app.wait_state(lambda s: s["screen"] == "home" and connected(s))
    return state
