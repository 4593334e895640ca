"""The kiosk app's own rules: JSON-only actions, the ping endpoint (CIBA §10.2) authenticated by
the client_notification_token, the binding message format, and the choice of delivery mode."""

from __future__ import annotations

import re
import time

import pytest

from server.demo.ciba_client import CibaClient, ClientCredentials, Started
from server.demo.kiosk import NOTIFICATION_PATH, KioskConfig, create_kiosk_app
from server.demo.kiosk_flow import FlowSettings, Login, binding_message


@pytest.fixture
def kiosk_app():
    return create_kiosk_app(KioskConfig(issuer="http://127.0.0.1:9", client_id="kiosk",
                                        client_secret="s", registered_mode="ping"))


@pytest.fixture
def waiting_login(kiosk_app):
    """A ping-mode sign-in in progress (no provider needed)."""
    kiosk = kiosk_app.extensions["kiosk"]
    login = Login(kiosk.client, FlowSettings(mode="ping"), "alice")
    login.started, login.state = Started("the-auth-req-id", 120, 5), "waiting"
    kiosk.logins[login.id] = login
    return login


def test_binding_messages_are_short_and_unambiguous():
    messages = {binding_message("LIB-4") for _ in range(50)}
    assert all(re.fullmatch(r"LIB-4 · [2-9A-HJKMNP-TV-Z]{4}", m) for m in messages)
    assert len(messages) > 45


@pytest.mark.parametrize("path", ["/api/login", "/api/done", "/api/cancel"])
def test_actions_need_a_json_body(kiosk_app, path):
    response = kiosk_app.test_client().post(path, data={"login_hint": "alice"})
    assert response.status_code == 415


def test_an_empty_login_hint_is_refused(kiosk_app):
    response = kiosk_app.test_client().post("/api/login", json={"login_hint": "  "})
    assert response.status_code == 400 and response.json["state"] == "start"


def test_the_ping_with_the_right_token_wakes_the_sign_in(kiosk_app, waiting_login):
    response = kiosk_app.test_client().post(
        NOTIFICATION_PATH, json={"auth_req_id": "the-auth-req-id"},
        headers={"Authorization": f"Bearer {waiting_login.notification_token}"})
    assert response.status_code == 204
    assert waiting_login._was_pinged()


@pytest.mark.parametrize("headers, body", [
    ({}, {"auth_req_id": "the-auth-req-id"}),
    ({"Authorization": "Bearer wrong"}, {"auth_req_id": "the-auth-req-id"}),
    ("right", {"auth_req_id": "another-id"}),
    ("right", {}),
])
def test_a_ping_without_the_right_token_or_id_is_refused(kiosk_app, waiting_login, headers, body):
    if headers == "right":
        headers = {"Authorization": f"Bearer {waiting_login.notification_token}"}
    response = kiosk_app.test_client().post(NOTIFICATION_PATH, json=body, headers=headers)
    assert response.status_code == 400
    assert not waiting_login._was_pinged()


@pytest.mark.parametrize("registered, offered, expected", [
    ("ping", ["poll", "ping"], "ping"),
    ("ping", ["poll"], "poll"),
    ("poll", ["poll", "ping"], "poll"),
])
def test_ping_only_when_registered_so_and_offered(kiosk_app, monkeypatch, registered, offered,
                                                  expected):
    kiosk = kiosk_app.extensions["kiosk"]
    kiosk.config.registered_mode = registered
    monkeypatch.setattr(kiosk.client, "_metadata",
                        {"backchannel_token_delivery_modes_supported": offered})
    assert kiosk.mode == expected


@pytest.mark.parametrize("delivery, elapsed, title, expected", [
    ("console", 0.0, "No phone set up", "Ask staff to help you sign in"),
    ("device", 5.0, "Check your phone", ""),
    ("device", 21.0, "Check your phone", "Nothing on your phone? Open the authenticator app"),
    (None, 5.0, "Check your phone", ""),
    (None, 11.0, "Check your phone", "Nothing on your phone? Link the authenticator app"),
])
def test_the_waiting_screen_tells_what_the_provider_reported(kiosk_app, waiting_login, delivery,
                                                             elapsed, title, expected):
    """ciba_stack_delivery "console": the request reached no phone, and the screen says so."""
    waiting_login.started = Started("the-auth-req-id", 120, 5,
                                    started_at=time.monotonic() - elapsed, delivery=delivery)
    client = kiosk_app.test_client()
    with client.session_transaction() as session:
        session["login"] = waiting_login.id
    state = client.get("/api/state").json
    assert state["title"] == title
    assert state["help"].startswith(expected) if expected else state["help"] == ""
    if delivery == "console":
        assert "No phone will ask about this sign-in" in state["lead"]
        assert "http://127.0.0.1:9/account/devices" in state["help"]


def test_the_provider_extension_is_read_from_the_bc_authorize_answer(monkeypatch):
    client = CibaClient("http://127.0.0.1:9", ClientCredentials("kiosk", "s"))
    monkeypatch.setattr(client, "_metadata", {"backchannel_authentication_endpoint": "x"})
    for body, expected in [({"ciba_stack_delivery": "console"}, "console"),
                           ({"ciba_stack_delivery": "device"}, "device"),
                           ({"ciba_stack_delivery": "pigeon"}, None), ({}, None)]:
        monkeypatch.setattr(client, "_post", lambda _url, _form, b=body: {
            "auth_req_id": "r", "expires_in": 120, **b})
        assert client.start("alice").delivery == expected
