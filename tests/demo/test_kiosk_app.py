"""The kiosk app's own rules: JSON-only actions, the ping endpoint (CIBA §10.2) authenticated by
the client_notification_token, the binding message format, and the choice of delivery mode."""

from __future__ import annotations

import re

import pytest

from server.demo.ciba_client import Started
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
