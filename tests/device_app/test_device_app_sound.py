"""The request sound, in the real app under Xvfb with a real notification daemon (dunst) on its
own session bus, whose Notify calls dbus-monitor reads back.

What is observed is the app's sound hook (each call recorded by the driver) and the sound Kivy
loaded through SDL2_mixer, opened on SDL's "dummy" audio driver (there are no speakers here),
and the hints of the desktop notification: one sound, never two. A machine without audio output
gets the theme's sound name in the notification instead, and a quiet terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from app_remote import AppRemote, card_for, enroll_from_qr_image

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def tools():
    for tool in ("dbus-run-session", "dunst", "dbus-monitor"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed (Debian packages dbus, dbus-bin, dunst)")


class NotifyCalls:
    """dbus-monitor on the app's session bus: the Notify calls the app makes."""

    def __init__(self, app: AppRemote, log: Path) -> None:
        bus = app.call("env", name="DBUS_SESSION_BUS_ADDRESS")
        self.log = log
        self.out = open(log, "w")
        self.proc = subprocess.Popen(
            ["dbus-monitor", "--session", "interface='org.freedesktop.Notifications',member='Notify'"],
            stdout=self.out, stderr=subprocess.STDOUT, env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus))
        time.sleep(0.5)  # monitoring starts

    def calls(self) -> list[str]:
        text = self.log.read_text()
        return [block for block in text.split("method call")[1:] if "member=Notify" in block]

    def wait(self, count: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.calls()) < count:
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.1)
        return self.calls()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.out.close()



def start(tmp_path: Path, audio: str) -> AppRemote:
    return AppRemote(tmp_path / "device-data", tmp_path / "app.log", session_bus=True,
                     env={"SDL_AUDIODRIVER": audio})


def test_a_request_behind_plays_the_apps_sound_and_the_notification_is_silent(provider, tmp_path):
    app = start(tmp_path, "dummy")
    monitor = NotifyCalls(app, tmp_path / "notify.log")
    made = []
    try:
        enroll_from_qr_image(app, provider, tmp_path)
        made.append(provider.bc_authorize("IN FRONT 7"))  # the window has the focus: no sound
        app.wait_state(lambda s: card_for(s, "IN FRONT 7"))
        assert app.call("sounds")["calls"] == []

        app.call("window_focus", focused=False)
        made.append(provider.bc_authorize("BEHIND 7"))
        app.wait_state(lambda s: card_for(s, "BEHIND 7"))
        sounds = app.call("sounds")
        assert [c["played"] for c in sounds["calls"]] == [True]
        loaded = sounds["loaded"]
        assert Path(loaded["source"]).name == "request.wav" and 0.3 < loaded["length"] < 0.5
        assert loaded["state"] == "play"
        (notify,) = monitor.wait(1)
        assert "BEHIND 7" in notify
        assert '"suppress-sound"' in notify and '"sound-name"' not in notify  # one sound only

        # Settings → Turn the sound off: silence, and it stays off after a restart.
        app.call("window_focus", focused=True)
        app.press("nav_settings")
        app.call("scroll_to", id="sound_button")
        app.press("sound_button")
        assert app.state()["sound_setting"].startswith("Off")
        app.call("window_focus", focused=False)
        made.append(provider.bc_authorize("SILENT 7"))
        app.wait_state(lambda s: card_for(s, "SILENT 7"))
        assert len(app.call("sounds")["calls"]) == 1  # not called again
        notify = monitor.wait(2)[1]
        assert "SILENT 7" in notify and '"suppress-sound"' in notify and '"sound-name"' not in notify
        assert json.loads((tmp_path / "device-data" / "settings.json").read_text()) == {"sound": False}
    finally:
        monitor.close()
        app.close()
        for auth_req_id in made:
            provider.bc_cancel(auth_req_id)
    app = start(tmp_path, "dummy")
    try:
        assert app.wait_state(lambda s: s["screen"] == "home")["sound_setting"].startswith("Off")
    finally:
        app.close()


def test_without_audio_output_the_notification_brings_the_sound(provider, tmp_path):
    app = start(tmp_path, "no-such-audio-driver")  # SDL cannot open any audio device
    monitor = NotifyCalls(app, tmp_path / "notify.log")
    made = []
    try:
        enroll_from_qr_image(app, provider, tmp_path)
        app.call("window_focus", focused=False)
        made.append(provider.bc_authorize("NO SPEAKERS 7"))
        app.wait_state(lambda s: card_for(s, "NO SPEAKERS 7"))
        sounds = app.call("sounds")
        assert [c["played"] for c in sounds["calls"]] == [False] and sounds["loaded"] is None
        (notify,) = monitor.wait(1)
        assert '"sound-name"' in notify and '"message-new-instant"' in notify
        assert '"suppress-sound"' not in notify
    finally:
        monitor.close()
        app.close()
        for auth_req_id in made:
            provider.bc_cancel(auth_req_id)
    log = (tmp_path / "app.log").read_text()
    assert "No audio output" in log
    assert "[CRITICAL" not in log and "Traceback" not in log  # the app's lines (not dunst's)
