"""The device app's second round, pressed as a person would under Xvfb against a real provider:
cancel at the client withdraws the card, no dead end after a failed "Add an account", the
offline bar, the expiry notice, History details with "I didn't request this", and a card
that does not move under the finger when a result is shown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from app_remote import AppRemote, card_for, connected, enroll_from_qr_image, open_qr_image

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def leave_nothing_pending(provider):
    """Requests a test leaves pending would show on the next test's new device: cancel them."""
    made: list[str] = []
    original = provider.bc_authorize

    def recording(*args, **kwargs) -> str:
        made.append(original(*args, **kwargs))
        return made[-1]

    provider.bc_authorize = recording
    yield
    provider.bc_authorize = original
    if provider.running:
        for auth_req_id in made:
            cancel(provider, auth_req_id)


def cancel(provider, auth_req_id: str):
    return provider.bc_cancel(auth_req_id)


def test_a_cancelled_request_is_withdrawn_at_once_and_says_who(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    auth_req_id = provider.bc_authorize("CANCEL ME 1")
    app.wait_state(lambda s: card_for(s, "CANCEL ME 1"))
    assert cancel(provider, auth_req_id).json() == {"status": "cancelled"}
    # How fast (the 1 s) is measured by bench/device_latency.py, not asserted here.
    state = app.wait_state(lambda s: not card_for(s, "CANCEL ME 1"), timeout=10)
    assert state["banner"].startswith("Cancelled by Library kiosk")
    state = app.wait_state(lambda s: s["history"])  # History is redrawn just after Home
    assert state["history"][0]["outcome"] == "cancelled"


def test_no_dead_end_after_a_failed_add_account(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    used = tmp_path / "enroll-qr.png"  # its code is used up: adding it again fails
    app.press("nav_settings")
    app.press("add_account_button")
    state = app.wait_state(lambda s: s["screen"] == "welcome")
    assert state["show_nav"]
    open_qr_image(app, str(used))
    app.wait_state(lambda s: "already used" in s["welcome_status"], timeout=20)
    provider.bc_authorize("WHILE ADDING")
    state = app.wait_state(lambda s: s["request_bar"] and card_for(s, "WHILE ADDING"))
    assert state["screen"] == "welcome"  # nothing jumps away under the person
    assert app.call("key", key=27)  # Escape goes back, it does not quit
    state = app.wait_state(lambda s: s["screen"] == "home")
    assert card_for(state, "WHILE ADDING") and not state["request_bar"]
    app.press("nav_settings")
    app.press("add_account_button")
    app.press("back_button")
    app.wait_state(lambda s: s["screen"] == "home")


def test_offline_is_plain_and_retry_reconnects(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    provider.stop()
    state = app.wait_state(lambda s: s["offline"], timeout=20)
    if not state["cards"]:  # (requests left by earlier tests of this provider are listed)
        assert "offline" in state["empty_text"].lower()
    app.press("retry_button")  # the provider is still down: the app tries and stays offline
    assert app.wait_state(lambda s: s["offline"], timeout=20)["offline"]
    provider.start()
    try:
        app.press("retry_button")
    except RuntimeError as exc:
        # On a slow machine the app's own backoff may reconnect while the provider starts.
        if "disabled or hidden" not in str(exc) or app.state()["offline"]:
            raise
    auth_req_id = provider.bc_authorize("BACK AGAIN")
    state = app.wait_state(lambda s: connected(s) and card_for(s, "BACK AGAIN"), timeout=20)
    assert not state["offline"]
    app.press("accept_button", card=card_for(state, "BACK AGAIN")["request_id"])
    assert provider.poll_tokens(auth_req_id)[0] == 200


def test_expiry_is_announced_and_history_opens_with_a_report(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    provider.bc_authorize("SOON GONE", requested_expiry="3")
    app.wait_state(lambda s: card_for(s, "SOON GONE"))
    state = app.wait_state(lambda s: not card_for(s, "SOON GONE"), timeout=20)
    assert "expired" in state["banner"]
    state = app.wait_state(lambda s: s["history"])
    assert state["history"][0]["outcome"] == "expired"
    assert state["history"][0]["account"] == f"alice @ 127.0.0.1:{provider.port}"

    provider.bc_authorize("NEXT ONE")
    app.wait_state(lambda s: card_for(s, "NEXT ONE"))
    time.sleep(0.5)  # laid out on the next frame
    top = card_for(app.state(), "NEXT ONE")["top"]
    auth_req_id = provider.bc_authorize("NOT ME 7")  # newest first: on top, NEXT ONE below
    state = app.wait_state(lambda s: card_for(s, "NOT ME 7"))
    app.press("deny_button", card=card_for(state, "NOT ME 7")["request_id"])
    state = app.wait_state(lambda s: s["notice_action"] == "I didn't request this")
    # the result floats above the nav bar: the next card is back at the top, not pushed down
    state = app.wait_state(lambda s: len(s["cards"]) == 1
                           and abs(card_for(s, "NEXT ONE")["top"] - top) <= 1, timeout=5)
    assert state["notice_action"] == "I didn't request this"  # while the result is shown
    assert provider.poll_tokens(auth_req_id)[1]["error"] == "access_denied"
    app.press("notice_action")
    state = app.wait_state(lambda s: s["popups"] == ["MessagePopup"], timeout=20)
    assert "change your password" in state["popup_text"][0]
    app.press("message_ok")
    app.wait_state(lambda s: not s["popups"])
    app.press("nav_history")
    state = app.wait_state(lambda s: s["screen"] == "history")
    denied = next(h for h in state["history"] if h["outcome"] == "denied")
    assert "(reported)" in denied["reason"]


def test_history_rows_open_with_the_details(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    provider.bc_authorize("DETAILS 3")
    state = app.wait_state(lambda s: card_for(s, "DETAILS 3"))
    app.press("deny_button", card=card_for(state, "DETAILS 3")["request_id"])
    app.press("nav_history")
    app.wait_state(lambda s: s["screen"] == "history" and s["history"])
    app.call("press_history", index=0)
    state = app.wait_state(lambda s: s["popups"] == ["HistoryDetailPopup"])
    text = state["popup_text"][0]
    assert "Denied" in text and "DETAILS 3" in text and "alice @" in text and "Asked:" in text
    app.press("report_button")
    state = app.wait_state(lambda s: s["popups"] == ["MessagePopup"], timeout=20)
    assert "Nothing was shared" in state["popup_text"][0]
    assert app.call("key", key=27)  # Escape closes the popup
    app.wait_state(lambda s: not s["popups"])


def test_scan_qr_code_reads_camera_frames(provider, tmp_path):
    """Scan QR code with OpenCV frames from a video file (``--camera`` / CIBA_DEVICE_CAMERA),
    the path a real camera's frames take."""
    cv2 = pytest.importorskip("cv2", reason="pip install '.[camera]'")
    from tests.device_app.test_camera_frames import frame_of

    provider.enrollment_png(tmp_path / "qr.png")
    from device_app.core.qr import decode_file
    link = decode_file(tmp_path / "qr.png")
    video = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for text in [None] * 10 + [link] * 20:
        writer.write(frame_of(text))
    writer.release()
    app = AppRemote(tmp_path / "device-data", tmp_path / "app.log",
                    env={"CIBA_DEVICE_CAMERA": str(video)})
    try:
        app.wait_state(lambda s: s["screen"] == "welcome")
        app.press("scan_button")
        state = app.wait_state(lambda s: s["enrolled"], timeout=30)
        assert "Alice Liddell (alice)" in state["welcome_status"]
    finally:
        app.close()


def dunst(app, *args: str) -> str:
    """dunstctl on the app's own session bus."""
    bus = app.call("env", name="DBUS_SESSION_BUS_ADDRESS")
    return subprocess.run(["dunstctl", *args], env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus),
                          capture_output=True, text=True, timeout=10).stdout.strip()


def test_a_request_notifies_the_desktop_when_the_window_is_behind(provider, tmp_path):
    for tool in ("dbus-run-session", "dunst", "dunstctl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed (Debian packages dbus, dunst)")
    app = AppRemote(tmp_path / "device-data", tmp_path / "app.log", session_bus=True)
    try:
        enroll_from_qr_image(app, provider, tmp_path)
        provider.bc_authorize("IN FRONT")  # the window has the focus: no desktop notification
        app.wait_state(lambda s: card_for(s, "IN FRONT"))
        app.call("window_focus", focused=False)
        auth_req_id = provider.bc_authorize("BEHIND 5")
        app.wait_state(lambda s: card_for(s, "BEHIND 5"))
        deadline = time.monotonic() + 15
        while dunst(app, "count", "displayed") != "1":
            assert time.monotonic() < deadline, dunst(app, "count")
            time.sleep(0.2)
        cancel(provider, auth_req_id)  # the request ends: its notification is withdrawn
        while dunst(app, "count", "displayed") != "0":
            assert time.monotonic() < deadline + 10, dunst(app, "count")
            time.sleep(0.2)
        history = json.loads(dunst(app, "history"))["data"][0]
        (shown,) = history
        assert shown["summary"]["data"] == "Sign-in request from Library kiosk"
        assert "BEHIND 5" in shown["body"]["data"] and "alice @" in shown["body"]["data"]
        assert shown["appname"]["data"] == "CIBA Authenticator"
    finally:
        app.close()


def test_two_accounts_have_chips_of_their_own(app, provider, tmp_path):
    if "bob" not in provider.cli("users", "list"):
        provider.cli("users", "add", "bob", "--password", "bob-password-123", "--name", "Bob")
    enroll_from_qr_image(app, provider, tmp_path)
    provider.enrollment_png(tmp_path / "bob-qr.png", username="bob")
    app.press("nav_settings")
    app.press("add_account_button")
    open_qr_image(app, str(tmp_path / "bob-qr.png"))
    app.wait_state(lambda s: s["enrolled"] and "(bob)" in s["welcome_status"], timeout=20)
    app.press("continue_button")
    app.wait_state(lambda s: len(s["accounts"]) == 2 and connected(s))
    provider.bc_authorize("FOR ALICE")
    provider.bc_authorize("FOR BOB", login_hint="bob")
    state = app.wait_state(lambda s: card_for(s, "FOR ALICE") and card_for(s, "FOR BOB"))
    alice, bob = card_for(state, "FOR ALICE"), card_for(state, "FOR BOB")
    assert alice["account"].startswith("alice @ 127.0.0.1")
    assert bob["account"].startswith("bob @ 127.0.0.1")
    assert alice["account_colour"] != bob["account_colour"]
    # Bob's card may sit below the fold of the list: scroll to it, as a person would.
    app.call("scroll_to", id="deny_button", card=bob["request_id"])
    app.press("deny_button", card=bob["request_id"])
    app.wait_state(lambda s: not card_for(s, "FOR BOB"))
    app.call("scroll_to", id="deny_button", card=alice["request_id"])
    app.press("deny_button", card=alice["request_id"])


def test_an_approval_the_kiosk_cancels_before_using_it_says_nothing_was_shared(app, provider,
                                                                               tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    auth_req_id = provider.bc_authorize("TOO LATE 3")
    card = card_for(app.wait_state(lambda s: card_for(s, "TOO LATE 3")), "TOO LATE 3")
    app.press("accept_button", card=card["request_id"])
    app.wait_state(lambda s: s["banner"].startswith("Approved"))
    assert cancel(provider, auth_req_id).json() == {"status": "cancelled"}
    state = app.wait_state(lambda s: "nothing was shared" in s["banner"])
    assert state["banner"].startswith("You approved it, but Library kiosk cancelled")
    row = next(r for r in state["history"] if r["request_id"] == card["request_id"])
    assert row["outcome"] == "cancelled" and "nothing was shared" in row["reason"]
    assert provider.token(auth_req_id)[1]["error"] == "access_denied"
