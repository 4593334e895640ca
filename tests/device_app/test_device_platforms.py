"""What the app does on platforms other than a Linux desktop (Android, Windows, macOS), checked
here by taking away what they lack: without a D-Bus session bus the notification goes through
plyer's facade (a stand-in module records the call; plyer itself is not installed on Linux),
on Android 13+ the app asks for the notification permission at start and shows none when refused
(a stand-in for python-for-android's android.permissions answers), and without zxing-cpp (no
python-for-android recipe) the app still starts and reads no QR image
but says to paste the link."""

from __future__ import annotations

import logging
import subprocess
import sys
import types

import pytest

from app_remote import AppRemote, connected, paste_link
from device_app.core import qr
from device_app.core.notifications import DesktopNotifier


@pytest.fixture
def no_session_bus(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)


def fake_plyer(monkeypatch, notify):
    facade = types.SimpleNamespace(notify=notify)
    module = types.ModuleType("plyer")
    module.notification = facade
    monkeypatch.setitem(sys.modules, "plyer", module)


def test_without_a_session_bus_plyer_shows_the_notification(monkeypatch, no_session_bus):
    calls = []
    fake_plyer(monkeypatch, lambda **kwargs: calls.append(kwargs))
    notifier = DesktopNotifier()
    assert notifier.notify("Sign-in request from Library kiosk", "Check that it shows: LIB-4") == 0
    assert calls == [{"title": "Sign-in request from Library kiosk",
                      "message": "Check that it shows: LIB-4",
                      "app_name": "CIBA Authenticator", "timeout": 60}]


def test_a_platform_plyer_cannot_serve_is_tried_once(monkeypatch, no_session_bus, caplog):
    calls = []

    def unsupported(**kwargs):
        calls.append(kwargs)
        raise NotImplementedError

    fake_plyer(monkeypatch, unsupported)
    caplog.set_level(logging.INFO, logger="device_app.core.notifications")
    notifier = DesktopNotifier()
    assert notifier.notify("a", "b") == 0 and notifier.notify("c", "d") == 0
    assert len(calls) == 1
    assert "No notification (NotImplementedError)" in caplog.text


def test_without_plyer_or_a_bus_nothing_is_shown(monkeypatch, no_session_bus):
    monkeypatch.setitem(sys.modules, "plyer", None)  # import plyer raises ImportError
    assert DesktopNotifier().notify("a", "b") == 0


def fake_android_permissions(monkeypatch, granted: bool, already: bool = False) -> list:
    """python-for-android's android.permissions, answering as the person would."""
    asked = []

    def request_permissions(permissions, callback):
        asked.append(list(permissions))
        callback(permissions, [granted] * len(permissions))

    android = types.ModuleType("android")
    permissions = types.ModuleType("android.permissions")
    permissions.check_permission = lambda name: already
    permissions.request_permissions = request_permissions
    android.permissions = permissions
    monkeypatch.setitem(sys.modules, "android", android)
    monkeypatch.setitem(sys.modules, "android.permissions", permissions)
    return asked


def test_android_asks_for_notifications_and_shows_them_once_allowed(monkeypatch, no_session_bus):
    calls = []
    fake_plyer(monkeypatch, lambda **kwargs: calls.append(kwargs))
    asked = fake_android_permissions(monkeypatch, granted=True)
    notifier = DesktopNotifier()
    notifier.request_permission("android")
    assert asked == [["android.permission.POST_NOTIFICATIONS"]]
    notifier.notify("Sign-in request from Library kiosk", "Open the app to answer.")
    assert [c["title"] for c in calls] == ["Sign-in request from Library kiosk"]


def test_android_refused_notifications_show_nothing(monkeypatch, no_session_bus, caplog):
    calls = []
    fake_plyer(monkeypatch, lambda **kwargs: calls.append(kwargs))
    fake_android_permissions(monkeypatch, granted=False)
    caplog.set_level(logging.INFO, logger="device_app.core.notifications")
    notifier = DesktopNotifier()
    notifier.request_permission("android")
    assert notifier.notify("a", "b") == 0 and calls == []
    assert "Notifications not allowed" in caplog.text


def test_android_does_not_ask_again_once_granted(monkeypatch, no_session_bus):
    asked = fake_android_permissions(monkeypatch, granted=True, already=True)
    DesktopNotifier().request_permission("android")
    assert asked == []


@pytest.mark.parametrize("platform", ["linux", "win", "macosx"])
def test_other_platforms_ask_for_nothing(monkeypatch, platform):
    asked = fake_android_permissions(monkeypatch, granted=False)
    notifier = DesktopNotifier()
    notifier.request_permission(platform)
    assert asked == [] and not notifier.denied


def test_without_zxing_cpp_the_core_imports_and_says_to_paste(tmp_path):
    image = tmp_path / "code.png"
    from PIL import Image
    Image.new("RGB", (40, 40), "white").save(image)
    script = (
        "import sys; sys.modules['zxingcpp'] = None\n"
        "from device_app.core import service, qr\n"
        "print(qr.available())\n"
        "try:\n"
        f"    qr.decode_file({str(image)!r})\n"
        "except qr.NoQRCode as exc:\n"
        "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "False", "This build cannot read QR codes (zxing-cpp is missing): paste the enrollment "
                 "link instead."]
    assert qr.available()  # here it is installed


@pytest.mark.slow
def test_the_app_without_zxing_cpp_offers_the_paste_box_only(provider, tmp_path):
    app = AppRemote(tmp_path / "device-data", tmp_path / "app.log",
                    env={"CIBA_TEST_WITHOUT_MODULES": "zxingcpp"})
    try:
        app.wait_state(lambda s: s["screen"] == "welcome")
        with pytest.raises(RuntimeError, match="disabled or hidden"):
            app.press("open_image_button")
        assert "cannot read QR codes: paste the link" in app.call("text", id="no_camera_note")
        paste_link(app, provider.enrollment_png(tmp_path / "qr.png"))
        app.wait_state(lambda s: s["enrolled"], timeout=20)
        app.press("continue_button")
        app.wait_state(lambda s: s["screen"] == "home" and connected(s))
    finally:
        app.close()
