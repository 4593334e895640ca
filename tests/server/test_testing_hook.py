"""The automated-approval hook for the OpenID conformance suite: only with
CIBA_AUTOMATED_APPROVAL_TOKEN set, bearer-protected, completing requests as Accept/Deny would."""

from __future__ import annotations

import logging

import pytest

from server import create_app

from .ciba_helpers import assert_error, auth_req_id, poll

TOKEN = "conformance-approval-token-0123456789"


@pytest.fixture
def hooked(settings, clock):
    settings.automated_approval_token = TOKEN
    app = create_app(settings, clock=clock)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def hook_http(hooked):
    return hooked.test_client()


@pytest.fixture
def hook_provider(hooked):
    return hooked.extensions["ciba"]


@pytest.fixture
def hook_kiosk(hook_provider):
    from server.admin import ClientSpec, add_client, add_user
    from tests.conftest import ClientCreds
    add_user(hook_provider, "alice", "alice-password")
    metadata, secret = add_client(hook_provider, ClientSpec(client_id="kiosk"))
    return ClientCreds("kiosk", secret, metadata)


def approve(http, req_id: str, action: str = "allow", token: str = TOKEN):
    return http.post("/testing/ciba-approval", data={"auth_req_id": req_id, "action": action},
                     headers={"Authorization": f"Bearer {token}"})


def test_absent_without_the_setting(http, alice, kiosk):
    req = auth_req_id(http, kiosk)
    response = approve(http, req)
    assert response.status_code == 404
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    assert "ciba_testing_approval_endpoint" not in http.get(
        "/.well-known/openid-configuration").json


def test_warning_at_start(settings, clock, caplog):
    settings.automated_approval_token = TOKEN
    with caplog.at_level(logging.WARNING):
        create_app(settings, clock=clock)
    assert any("CIBA_AUTOMATED_APPROVAL_TOKEN" in r.getMessage() for r in caplog.records)


def test_advertised_when_enabled(hook_http):
    body = hook_http.get("/.well-known/openid-configuration").json
    assert body["ciba_testing_approval_endpoint"] == "http://op.test/testing/ciba-approval"


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-authorization"),
    pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
    pytest.param({"Authorization": f"Basic {TOKEN}"}, id="wrong-scheme"),
    pytest.param({"Authorization": "Bearer " + TOKEN[:-1]}, id="prefix"),
])
def test_bad_bearer(hook_http, hook_kiosk, headers):
    req = auth_req_id(hook_http, hook_kiosk)
    response = hook_http.post("/testing/ciba-approval", headers=headers,
                              data={"auth_req_id": req, "action": "allow"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(poll(hook_http, hook_kiosk, req), 400, "authorization_pending")


def test_allow(hook_http, hook_kiosk):
    req = auth_req_id(hook_http, hook_kiosk)
    response = approve(hook_http, req, "allow")
    assert response.status_code == 200 and response.json == {"status": "approved"}
    tokens = poll(hook_http, hook_kiosk, req)
    assert tokens.status_code == 200 and "id_token" in tokens.json


def test_deny(hook_http, hook_kiosk):
    req = auth_req_id(hook_http, hook_kiosk)
    response = approve(hook_http, req, "deny")
    assert response.status_code == 200 and response.json == {"status": "denied"}
    assert_error(poll(hook_http, hook_kiosk, req), 400, "access_denied")


def test_second_decision_conflicts(hook_http, hook_kiosk):
    req = auth_req_id(hook_http, hook_kiosk)
    approve(hook_http, req, "allow")
    response = approve(hook_http, req, "deny")
    assert response.status_code == 409
    assert poll(hook_http, hook_kiosk, req).status_code == 200


@pytest.mark.parametrize("swept", [False, True], ids=["not-swept", "swept"])
def test_expired(hook_http, hook_kiosk, hook_provider, clock, swept):
    from server.oauth.decisions import sweep_expired

    req = auth_req_id(hook_http, hook_kiosk)
    clock.advance(301)
    if swept:  # marked expired by a process's sweep: still 410, not 409
        assert sweep_expired(hook_provider) == 1
    assert approve(hook_http, req).status_code == 410
    assert_error(poll(hook_http, hook_kiosk, req), 400, "expired_token")


@pytest.mark.parametrize("data", [
    pytest.param({"auth_req_id": "unknown", "action": "allow"}, id="unknown-auth-req-id"),
    pytest.param({"action": "allow"}, id="no-auth-req-id"),
    pytest.param({"auth_req_id": "REQ", "action": "maybe"}, id="bad-action"),
])
def test_bad_request(hook_http, hook_kiosk, data):
    req = auth_req_id(hook_http, hook_kiosk)
    data = {k: (req if v == "REQ" else v) for k, v in data.items()}
    response = hook_http.post("/testing/ciba-approval", data=data,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert_error(response, 400, "invalid_request")
