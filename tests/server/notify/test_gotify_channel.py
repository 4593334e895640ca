"""The Gotify channel against a Gotify-compatible server built strictly from Gotify's REST spec
(tests/support/gotify_server.py, real HTTP on 127.0.0.1): enrollment with push=gotify, revoking,
the message posted for a new request, and Gotify being down (issue 6)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from server.storage import notifications
from server.storage.models import Device

from ...conftest import ISSUER
from ..devices.helpers import DeviceKey

EXTRAS_KEY = "ciba::request"


def messages_posted(gotify) -> list[dict]:
    return [r for r in gotify.requests_to("POST", "/message") if r.get("status") == 200]


def test_enrollment_creates_a_gotify_user_app_and_client(gphone, gotify, provider):
    channel = gphone.enrollment["channel"]
    assert set(channel) == {"type", "url", "client_token"}
    assert channel["type"] == "gotify" and channel["url"] == gotify.url
    (user,) = [u for u in gotify.users.values() if u["name"] == "ciba-alice"]
    assert not user["admin"]
    (app,) = [a for a in gotify.apps.values() if a["user_id"] == user["id"]]
    (client,) = [c for c in gotify.clients.values() if c["user_id"] == user["id"]]
    assert client["token"] == channel["client_token"]
    assert client["name"] == "Alice's phone (CIBA)"
    with provider.db.session() as s:
        account = notifications.gotify_account(s, gphone_user_id(provider))
        device = s.get(Device, gphone.device_id)
        # secrets are stored sealed, never in clear
        assert user["pass"] not in account.password_sealed
        assert provider.box.open(account.password_sealed) == user["pass"]
        assert provider.box.open(account.app_token_sealed) == app["token"]
        assert device.gotify_client_id == client["id"]
        assert channel["client_token"] not in (device.gotify_client_token or "")
    assert gotify.violations == []


def gphone_user_id(provider) -> str:
    from server.storage import users

    with provider.db.session() as s:
        return users.by_username(s, "alice").id


def test_a_second_device_gets_its_own_client_of_the_same_gotify_user(gphone, enroll_gotify,
                                                                     alice, gotify):
    tablet, r = enroll_gotify(alice, "Alice's tablet")
    assert r.status_code == 201
    assert tablet.enrollment["channel"]["client_token"] != gphone.enrollment["channel"][
        "client_token"]
    assert len(gotify.requests_to("POST", "/user")) == 1
    assert len(gotify.requests_to("POST", "/application")) == 1
    assert len(gotify.requests_to("POST", "/client")) == 2
    assert gotify.violations == []


def test_without_gotify_push_gotify_is_an_invalid_request_and_keeps_the_code(tmp_path, alice):
    from server import create_app
    from server.config import Settings

    app = create_app(Settings(instance_path=str(tmp_path / "instance"), issuer=ISSUER))
    p = app.extensions["ciba"]
    from server.admin import add_user

    bob = add_user(p, "bob", "bob-password")
    offer = p.devices.new_enrollment(bob.id)
    code = parse_qs(urlsplit(offer.uri).query)["code"][0]
    device = DeviceKey(ISSUER)
    r = app.test_client().post("/device/enroll", json=device.enroll_body(code, push="gotify"))
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_request"
    assert "websocket" in r.get_json()["error_description"]
    r = app.test_client().post("/device/enroll", json=device.enroll_body(code))
    assert r.status_code == 201  # the code was not used up by the refused attempt


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_gotify_down_at_enrollment_is_temporarily_unavailable(enroll_gotify, alice, gotify,
                                                              provider, mode):
    gotify.go_down(mode)
    _, r = enroll_gotify(alice)
    assert r.status_code == 503
    assert r.get_json()["error"] == "temporarily_unavailable"
    (failure,) = provider.gotify.failures.recent()
    assert failure.username == "alice"
    assert failure.status == (None if mode == "refuse" else 503)
    gotify.come_back()
    assert gotify.violations == []


def test_the_enrollment_code_survives_a_gotify_outage(provider, http, alice, gotify):
    offer = provider.devices.new_enrollment(alice.id)
    code = parse_qs(urlsplit(offer.uri).query)["code"][0]
    device = DeviceKey(ISSUER)
    gotify.go_down("refuse")
    assert http.post("/device/enroll", json=device.enroll_body(code, push="gotify")).status_code == 503
    gotify.come_back()
    r = http.post("/device/enroll", json=device.enroll_body(code, push="gotify"))
    assert r.status_code == 201 and r.get_json()["channel"]["type"] == "gotify"
    assert gotify.violations == []


def test_revoking_the_device_deletes_its_gotify_client(gphone, gotify, provider):
    client_id = next(c["id"] for c in gotify.clients.values()
                     if c["token"] == gphone.enrollment["channel"]["client_token"])
    assert provider.devices.revoke(gphone.device_id)
    assert client_id not in gotify.clients
    (deleted,) = gotify.requests_to("DELETE", f"/client/{client_id}")
    assert deleted["status"] == 200
    assert gotify.violations == []


def test_revoking_while_gotify_is_down_is_recorded(gphone, gotify, provider):
    gotify.go_down()
    assert provider.devices.revoke(gphone.device_id)  # the revocation itself never fails
    (failure,) = provider.gotify.failures.recent()
    assert failure.operation == "deleteClient" and "left" in failure.description
    gotify.come_back()


def test_a_new_request_posts_a_spec_valid_message_with_the_request_id(
        gphone, bc_authorize, pending_ids, gotify, channel, kiosk):
    r = bc_authorize()
    assert r.status_code == 200
    auth_req_id = r.get_json()["auth_req_id"]
    assert channel.wait_idle()
    (posted,) = messages_posted(gotify)
    (request_id,) = pending_ids(gphone)
    body = posted["json"] or json.loads(posted["body"])
    assert body["extras"][EXTRAS_KEY] == {"event": "login_request", "request_id": request_id,
                                          "issuer": ISSUER, "expires_at": body["extras"][
                                              EXTRAS_KEY]["expires_at"]}
    assert body["title"] == "Sign-in request from Library kiosk"
    assert "Library kiosk" in body["message"] and "LIB-4 7F3K" in body["message"]
    assert body["priority"] == 8
    app_token = next(iter(a["token"] for a in gotify.apps.values() if a["name"] == "CIBA sign-in"))
    assert posted["headers"]["X-Gotify-Key"] == app_token
    assert "token" not in posted["query"]  # never a token in a URL
    for secret in (auth_req_id, kiosk.secret, app_token, gphone.enrollment["channel"][
            "client_token"], gphone.totp["secret"]):
        assert secret not in posted["body"]
    assert gotify.violations == []


def test_a_decision_posts_a_silent_resolved_message(gphone, bc_authorize, pending_ids, decide,
                                                    gotify, channel):
    bc_authorize()
    (request_id,) = pending_ids(gphone)
    assert decide(gphone, request_id).status_code == 200
    assert channel.wait_idle()
    first, resolved = messages_posted(gotify)
    body = resolved["json"]
    assert body["priority"] == 0
    assert body["extras"][EXTRAS_KEY]["event"] == "request_resolved"
    assert body["extras"][EXTRAS_KEY]["status"] == "approved"
    assert body["extras"][EXTRAS_KEY]["request_id"] == request_id
    assert gotify.violations == []


def test_users_in_another_mode_get_no_gotify_message(gphone, bc_authorize, gotify, channel,
                                                     provider):
    from server.notify.modes import set_mode

    set_mode(provider, "alice", "websocket")
    bc_authorize()
    assert channel.wait_idle()
    assert messages_posted(gotify) == []


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_gotify_down_never_fails_the_request(gphone, bc_authorize, pending_ids, gotify, channel,
                                             provider, browser, mode):
    from server.admin_users import set_admin

    gotify.go_down(mode)
    started = time.monotonic()
    r = bc_authorize()
    assert r.status_code == 200
    assert time.monotonic() - started < 1.0  # posting runs off the request path
    assert channel.wait_idle()
    assert len(pending_ids(gphone)) == 1  # the device still finds it by fetching
    (failure,) = provider.gotify.failures.recent()
    assert failure.operation == "createMessage" and failure.username == "alice"
    assert failure.status == (None if mode == "refuse" else 503)
    set_admin(provider, "alice", True)
    page = browser().get("/admin/").get_data(as_text=True)
    assert 'class="failure"' in page and "createMessage" in page
    assert "unreachable" in page if mode == "refuse" else "503" in page
    gotify.come_back()
    assert gotify.violations == []


def test_a_user_in_gotify_mode_without_a_gotify_device_is_recorded(alice, bc_authorize, gotify,
                                                                   channel, provider):
    from server.notify.modes import set_mode

    set_mode(provider, "alice", "gotify")
    assert bc_authorize().status_code == 200
    assert channel.wait_idle()
    (failure,) = provider.gotify.failures.recent()
    assert "no Gotify account" in failure.description
    assert messages_posted(gotify) == []


def test_a_deleted_application_is_made_again(gphone, bc_authorize, gotify, channel):
    for app_id in list(gotify.apps):
        del gotify.apps[app_id]  # an operator cleaned up the Gotify server
    assert bc_authorize().status_code == 200
    assert channel.wait_idle()
    assert len(messages_posted(gotify)) == 1
    assert len(gotify.requests_to("POST", "/application")) == 2
    assert gotify.violations == []


def test_failures_are_bounded_newest_first(provider):
    from server.storage.models import PushFailure

    with provider.db.session() as s:
        for i in range(7):
            notifications.add_failure(s, PushFailure(channel="gotify", at=float(i),
                                                     operation=f"op{i}", description=""),
                                      keep=5)
    recent = provider.gotify.failures.recent(limit=10)
    assert [f.operation for f in recent] == ["op6", "op5", "op4", "op3", "op2"]
