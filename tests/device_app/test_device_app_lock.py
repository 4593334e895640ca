"""The app lock pressed under Xvfb: a PIN offered after the first enrollment encrypts the key;
after a restart the app asks for it before requests arrive; Accept asks again once the unlock
window has passed; wrong PINs slow down, and the wait survives a restart."""

from __future__ import annotations

import pytest

from app_remote import AppRemote, card_for, connected, enroll_from_qr_image

pytestmark = pytest.mark.slow
PIN = "482913"


def enter_pin(app: AppRemote, pin: str) -> dict:
    app.wait_state(lambda s: s["popups"] == ["PinPopup"])
    app.call("set_text", id="pin_input", text=pin)
    app.press("pin_ok")
    return app.state()


def restart(app: AppRemote, tmp_path) -> AppRemote:
    app.close()
    return AppRemote(tmp_path / "device-data", tmp_path / "app.log")


def test_pin_protects_the_key_and_accept(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path, continue_=False)
    app.press("set_pin_offer")
    enter_pin(app, PIN)
    app.wait_state(lambda s: not s["popups"])
    keys = tmp_path / "device-data" / "keys"
    assert [p.suffix for p in keys.iterdir()] == [".enc"]
    assert b"PRIVATE KEY" not in next(keys.iterdir()).read_bytes()

    app = restart(app, tmp_path)
    try:
        state = app.wait_state(lambda s: s["popups"] == ["PinPopup"])
        assert not connected(state)  # nothing can arrive before the PIN opens the key
        enter_pin(app, PIN)
        app.wait_state(lambda s: connected(s) and not s["popups"])
        auth_req_id = provider.bc_authorize("LOCKED 1")
        state = app.wait_state(lambda s: card_for(s, "LOCKED 1"))
        app.call("pin_window_passed")
        app.press("accept_button", card=card_for(state, "LOCKED 1")["request_id"])
        enter_pin(app, "000000")  # wrong: asked again, nothing sent
        state = app.state()
        assert card_for(state, "LOCKED 1") and state["popups"] == ["PinPopup"]
        assert app.call("text", id="pin_error") == "Wrong PIN."
        enter_pin(app, PIN)
        assert provider.poll_tokens(auth_req_id)[0] == 200

        app.wait_state(lambda s: not s["popups"])
        app.press("nav_settings")
        app.press("set_pin_button")  # Change PIN: current PIN first
        for wrong in ("111111", "222222", "333333"):
            enter_pin(app, wrong)
        assert "Try again in 30 s" in app.call("text", id="pin_error")
    finally:
        app = restart(app, tmp_path)
        try:
            enter_pin(app, PIN)  # the right PIN, but the wait survived the restart
            assert "Try again in" in app.call("text", id="pin_error")
        finally:
            app.close()
