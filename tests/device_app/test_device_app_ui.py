"""The real device app under Xvfb against a real provider process on 127.0.0.1.

A client sends bc-authorize; the app (started as a subprocess under xvfb-run, remote-controlled
by app_driver.py) receives the request; the test presses the real Accept or Deny button with a
touch event; the client polls /token and gets its tokens or access_denied. Screenshots of the
welcome screen, Home with a pending request and the history go to assets/screenshots/ when
CIBA_SCREENSHOTS=1 (tests/support/screenshots.py), else to the test's tmp folder.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from app_remote import card_for, connected, enroll_from_qr_image, paste_link
from device_app.core.qr import decode_file
from tests.support.screenshots import screenshot_path

pytestmark = pytest.mark.slow


def test_enroll_accept_and_the_client_gets_tokens(app, provider, tmp_path):
    state = enroll_from_qr_image(app, provider, tmp_path, screenshot=True)
    assert "Alice Liddell (alice)" in state["welcome_status"]
    assert f"127.0.0.1:{provider.port}" in state["welcome_status"]

    auth_req_id = provider.bc_authorize("LIB-4 · 7F3K", scope="openid email profile")
    state = app.wait_state(lambda s: card_for(s, "LIB-4 · 7F3K"))
    card = card_for(state, "LIB-4 · 7F3K")
    assert card["client_name"] == "Library kiosk"
    assert card["countdown"].startswith("Expires in")
    assert card["scopes"].count("•") == 3
    app.call("screenshot", path=str(screenshot_path("home.png", tmp_path)))

    app.press("accept_button", card=card["request_id"])
    status, tokens = provider.poll_tokens(auth_req_id)
    assert status == 200, tokens
    assert tokens["access_token"] and tokens["id_token"]

    state = app.wait_state(lambda s: not s["cards"] and s["history"])
    assert state["history"][0]["outcome"] == "approved"
    assert state["banner"].startswith("Approved")

    second = provider.bc_authorize("POS-2 9QXH")  # a second one, denied, for the history
    state = app.wait_state(lambda s: card_for(s, "POS-2 9QXH"))
    app.press("deny_button", card=card_for(state, "POS-2 9QXH")["request_id"])
    assert provider.poll_tokens(second)[1]["error"] == "access_denied"
    state = app.wait_state(lambda s: len(s["history"]) == 2)
    assert [h["outcome"] for h in state["history"]] == ["denied", "approved"]
    app.press("nav_history")
    app.wait_state(lambda s: s["screen"] == "history")
    app.call("screenshot", path=str(screenshot_path("history.png", tmp_path)))
    assert_nothing_secret_logged(app, tmp_path)


def assert_nothing_secret_logged(app, tmp_path):
    """No JWS, private key, TOTP secret or enrollment code in the app's log."""
    log = app.log_path.read_text()
    secret = json.loads((tmp_path / "device-data" / "accounts.json").read_text())["accounts"][0]["totp"]["secret"]
    code = parse_qs(urlsplit(decode_file(tmp_path / "enroll-qr.png")).query)["code"][0]
    assert secret not in log and code not in log
    assert "PRIVATE KEY" not in log
    assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.", log)


def test_deny_a_payment_and_the_client_gets_access_denied(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    payment = [{"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "12.50"},
                "creditorName": "City Library"}]
    auth_req_id = provider.bc_authorize("DENY ME 42", authorization_details=json.dumps(payment))
    state = app.wait_state(lambda s: card_for(s, "DENY ME 42"))
    assert card_for(state, "DENY ME 42")["details"] == "Pay 12.50 EUR to City Library"
    app.press("deny_button", card=card_for(state, "DENY ME 42")["request_id"])
    status, body = provider.poll_tokens(auth_req_id)
    assert (status, body["error"]) == (400, "access_denied")
    state = app.wait_state(lambda s: s["history"])
    assert [h["outcome"] for h in state["history"]] == ["denied"]


def test_an_expiring_request_disappears_from_home(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    auth_req_id = provider.bc_authorize("SHORT LIVED", requested_expiry="4")
    app.wait_state(lambda s: card_for(s, "SHORT LIVED"))
    app.wait_state(lambda s: not card_for(s, "SHORT LIVED"), timeout=20)
    state = app.wait_state(lambda s: s["history"])  # History is redrawn just after Home
    assert [h["outcome"] for h in state["history"]] == ["expired"]
    assert provider.poll_tokens(auth_req_id)[1]["error"] == "expired_token"


def test_paste_link_enrolls_and_a_bad_link_is_explained(app, provider, tmp_path):
    app.wait_state(lambda s: s["screen"] == "welcome")
    app.press("paste_button")
    app.wait_state(lambda s: s["popups"] == ["PastePopup"])
    app.call("set_text", id="link_input", text="https://example.com/not-an-enrollment-link")
    app.press("link_enroll")
    state = app.wait_state(lambda s: "not an enrollment link" in s["welcome_status"])
    assert not state["enrolled"]
    app.wait_state(lambda s: not s["popups"])

    paste_link(app, provider.enrollment_png(tmp_path / "qr.png"))
    app.wait_state(lambda s: s["enrolled"], timeout=20)

    app.press("continue_button")
    state = app.wait_state(lambda s: connected(s) and s["accounts"] and s["codes"])
    assert state["accounts"][0]["state"] == "Connected"
    assert len(state["codes"][0]["code"].replace(" ", "")) == 6


def test_remove_account_returns_to_welcome(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    device_id = app.state()["accounts"][0]["device_id"]
    app.press("nav_settings")
    app.wait_state(lambda s: s["screen"] == "settings")
    app.press("remove_button", card=device_id)
    app.wait_state(lambda s: s["popups"] == ["ConfirmPopup"])
    app.press("confirm_button")
    state = app.wait_state(lambda s: s["screen"] == "welcome" and not s["accounts"])
    assert state["connection"] == "Not enrolled"


def test_the_app_reconnects_after_a_provider_restart(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    provider.stop()
    app.wait_state(lambda s: not connected(s), timeout=20)
    provider.start()
    auth_req_id = provider.bc_authorize("AFTER RESTART")
    state = app.wait_state(lambda s: connected(s) and card_for(s, "AFTER RESTART"), timeout=40)
    app.press("accept_button", card=card_for(state, "AFTER RESTART")["request_id"])
    assert provider.poll_tokens(auth_req_id)[0] == 200


def test_a_revoked_device_says_so(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    device_id = app.state()["accounts"][0]["device_id"]
    provider.cli("devices", "revoke", device_id)
    state = app.wait_state(lambda s: s["accounts"][0]["state"] == "This device was revoked", timeout=30)
    assert state["connection"].endswith("This device was revoked")
