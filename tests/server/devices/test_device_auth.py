"""Device authentication (docs/device-protocol.md §3) and pending requests (§4)."""

from __future__ import annotations

import pytest

from .helpers import DeviceKey


def test_pending_requests_newest_first_with_the_protocol_fields(http, phone, bc_authorize, clock):
    assert bc_authorize(binding_message="FIRST").status_code == 200
    clock.advance(1)
    assert bc_authorize(binding_message="SECOND", acr_values="urn:mace:incommon:iap:silver",
                        authorization_details='[{"type": "library_loan"}]').status_code == 200
    r = http.get("/device/requests", headers=phone.headers("GET", "/device/requests", clock.now()))
    assert r.status_code == 200
    first, second = r.get_json()["requests"][1], r.get_json()["requests"][0]
    assert first["binding_message"] == "FIRST"
    assert second == {
        "request_id": second["request_id"], "client_name": "Library kiosk",
        "client_uri": None, "logo_uri": None, "binding_message": "SECOND",
        "scopes": [{"scope": "openid", "description": "Confirm who you are"},
                   {"scope": "email", "description": "Your email address"}],
        "acr_values": "urn:mace:incommon:iap:silver",
        "authorization_details": [{"type": "library_loan"}],
        "created_at": int(clock.now()), "expires_at": int(clock.now()) + 300, "status": "pending"}


def test_only_the_own_users_pending_unexpired_requests(http, phone, enroll, bob, bc_authorize,
                                                       clock, pending_ids):
    bobs = enroll(bob)
    bc_authorize()
    assert len(pending_ids(phone)) == 1
    assert pending_ids(bobs) == []
    clock.advance(301)
    assert pending_ids(phone) == []


def test_fetch_one_request_and_its_status(http, phone, enroll, bob, bc_authorize, clock,
                                          pending_ids, decide):
    bc_authorize()
    [rid] = pending_ids(phone)
    path = f"/device/requests/{rid}"
    r = http.get(path, headers=phone.headers("GET", path, clock.now()))
    assert r.get_json()["status"] == "pending"
    decide(phone, rid, accept=False)
    r = http.get(path, headers=phone.headers("GET", path, clock.now()))
    assert r.get_json()["status"] == "denied"
    bobs = enroll(bob)
    r = http.get(path, headers=bobs.headers("GET", path, clock.now()))
    assert (r.status_code, r.get_json()["error"]) == (404, "not_found")


def _auth_cases():
    return [
        pytest.param(lambda d, now: "Bearer " + d.auth("GET", "/device/requests", now), id="scheme"),
        pytest.param(lambda d, now: "Device not.a.jws", id="garbage"),
        pytest.param(lambda d, now: "Device " + DeviceKey(d.issuer, device_id=d.device_id)
                     .auth("GET", "/device/requests", now), id="other-key"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests", now,
                                                       kid="unknown-device"), id="unknown-kid"),
        pytest.param(lambda d, now: "Device " + d.auth("POST", "/device/requests", now), id="htm"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests/x", now), id="htu"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests", now,
                                                       aud="http://other.test"), id="aud"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests", now,
                                                       iss="someone"), id="iss"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests", now - 120),
                     id="stale-iat"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests", now + 120),
                     id="future-iat"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests", now,
                                                       exp=int(now) + 600), id="long-exp"),
        pytest.param(lambda d, now: "Device " + d.auth("GET", "/device/requests", now,
                                                       jti="short"), id="short-jti"),
    ]


@pytest.mark.parametrize("authorization", _auth_cases())
def test_bad_device_authentication_is_invalid_token(http, phone, clock, authorization):
    r = http.get("/device/requests", headers={"Authorization": authorization(phone, clock.now())})
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_token"


def test_missing_authentication(http, phone):
    r = http.get("/device/requests")
    assert (r.status_code, r.get_json()["error"]) == (401, "invalid_token")


def test_a_device_jws_is_accepted_once(http, phone, clock):
    headers = phone.headers("GET", "/device/requests", clock.now())
    assert http.get("/device/requests", headers=headers).status_code == 200
    r = http.get("/device/requests", headers=headers)
    assert (r.status_code, r.get_json()["error"]) == (401, "invalid_token")


def test_a_revoked_device_cannot_fetch(http, phone, provider, clock):
    assert provider.devices.revoke(phone.device_id)
    r = http.get("/device/requests", headers=phone.headers("GET", "/device/requests", clock.now()))
    assert r.status_code == 401


def test_a_disabled_users_device_is_refused_until_enabled(http, phone, provider, clock):
    from server.admin_users import set_disabled

    def fetch():
        return http.get("/device/requests",
                        headers=phone.headers("GET", "/device/requests", clock.now()))

    set_disabled(provider, "alice", True, actor="operator:olga")
    r = fetch()
    assert (r.status_code, r.get_json()["error"]) == (401, "invalid_token")
    assert "disabled" in r.get_json()["error_description"]
    set_disabled(provider, "alice", False, actor="operator:olga")
    assert fetch().status_code == 200
