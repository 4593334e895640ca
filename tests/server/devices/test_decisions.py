"""Signed decisions (docs/device-protocol.md §6) complete the CIBA request, and nothing else can."""

from __future__ import annotations

import pytest

from .helpers import DeviceKey


@pytest.fixture
def request_id(bc_authorize, phone, pending_ids):
    r = bc_authorize()
    assert r.status_code == 200, r.get_json()
    [rid] = pending_ids(phone)
    return rid, r.get_json()["auth_req_id"]


def test_accept_then_the_client_gets_tokens(phone, request_id, decide, token):
    rid, auth_req_id = request_id
    assert token(auth_req_id).get_json()["error"] == "authorization_pending"
    r = decide(phone, rid, accept=True)
    assert r.status_code == 200
    assert r.get_json() == {"request_id": rid, "status": "approved"}
    tokens = token(auth_req_id).get_json()
    assert "access_token" in tokens and "id_token" in tokens


def test_deny_then_the_client_gets_access_denied(phone, request_id, decide, token):
    rid, auth_req_id = request_id
    r = decide(phone, rid, accept=False)
    assert r.get_json() == {"request_id": rid, "status": "denied"}
    assert token(auth_req_id).get_json()["error"] == "access_denied"


def test_decided_once_only(phone, request_id, decide):
    rid, _ = request_id
    decide(phone, rid, accept=False)
    r = decide(phone, rid, accept=True)
    assert r.status_code == 409
    assert r.get_json() == {"error": "already_decided", "status": "denied",
                            "error_description": "the request was decided before"}


@pytest.mark.parametrize("swept", [False, True], ids=["not-swept", "swept"])
def test_after_expiry(phone, request_id, decide, clock, token, sweep, swept):
    rid, auth_req_id = request_id
    clock.advance(301)
    if swept:  # marked expired by a process's sweep: still "expired", not already decided
        assert sweep() == 1
    r = decide(phone, rid)
    assert (r.status_code, r.get_json()["error"]) == (410, "expired")
    assert token(auth_req_id).get_json()["error"] == "expired_token"


def test_signed_by_another_device_of_the_same_user(phone, enroll, alice, request_id, decide, token):
    rid, auth_req_id = request_id
    other = enroll(alice, "Alice's tablet")
    r = decide(phone, rid, signer=other)
    assert (r.status_code, r.get_json()["error"]) == (401, "invalid_token")
    assert token(auth_req_id).get_json()["error"] == "authorization_pending"


def test_another_users_device_cannot_see_or_decide(enroll, bob, request_id, decide, token):
    rid, auth_req_id = request_id
    r = decide(enroll(bob), rid)
    assert (r.status_code, r.get_json()["error"]) == (404, "not_found")
    assert token(auth_req_id).get_json()["error"] == "authorization_pending"


def test_a_replayed_jti_is_refused(phone, bc_authorize, pending_ids, decide, token, clock):
    first = bc_authorize(binding_message="ONE").get_json()["auth_req_id"]
    clock.advance(1)
    second = bc_authorize(binding_message="TWO").get_json()["auth_req_id"]
    two, one = pending_ids(phone)
    assert decide(phone, one, binding_message="ONE", claims={"jti": "j" * 43}).status_code == 200
    r = decide(phone, two, binding_message="TWO", claims={"jti": "j" * 43})
    assert (r.status_code, r.get_json()["error"]) == (401, "invalid_token")
    assert token(second).get_json()["error"] == "authorization_pending"
    assert "access_token" in token(first).get_json()


def test_a_revoked_device_cannot_decide(phone, provider, request_id, decide, token):
    rid, auth_req_id = request_id
    provider.devices.revoke(phone.device_id)
    r = decide(phone, rid)
    assert r.status_code == 401
    assert token(auth_req_id).get_json()["error"] == "authorization_pending"


@pytest.mark.parametrize("claims,status", [
    ({"binding_message": "LIB-4 XXXX"}, 400),
    ({"binding_message": None}, 400),
    ({"decision": "maybe"}, 400),
    ({"request_id": "another"}, 400),
    ({"aud": "http://other.test"}, 401),
    ({"iss": "someone"}, 401),
    ({"iat": 0}, 401),
    ({"jti": None}, 401),
])
def test_bad_decision_claims(phone, request_id, decide, token, clock, claims, status):
    rid, auth_req_id = request_id
    binding = claims.pop("binding_message", "LIB-4 7F3K")
    r = decide(phone, rid, binding_message=binding, claims=claims)
    assert r.status_code == status, r.get_json()
    assert token(auth_req_id).get_json()["error"] == "authorization_pending"


def test_wrong_typ_or_alg_is_refused(http, phone, request_id, clock):
    from .helpers import sign

    rid, _ = request_id
    path = f"/device/requests/{rid}/decision"
    claims = {"iss": phone.device_id, "aud": phone.issuer, "request_id": rid, "decision": "accept",
              "binding_message": "LIB-4 7F3K", "iat": int(clock.now()), "jti": "k" * 43}
    for typ in ("device-auth+jwt", "JWT"):
        r = http.post(path, json={"decision": sign(phone.key, typ, phone.device_id, claims)},
                      headers=phone.headers("POST", path, clock.now()))
        assert r.status_code == 401
    r = http.post(path, json={"decision": "x.y.z"}, headers=phone.headers("POST", path, clock.now()))
    assert r.status_code == 401
    r = http.post(path, json={"nope": 1}, headers=phone.headers("POST", path, clock.now()))
    assert r.status_code == 400


def test_the_client_cannot_approve_with_what_it_knows(http, kiosk, request_id, token):
    rid, auth_req_id = request_id
    for target in (rid, auth_req_id):
        path = f"/device/requests/{target}/decision"
        r = http.post(path, json={"decision": "accept"}, headers=kiosk.basic())
        assert r.status_code == 401
    assert token(auth_req_id).get_json()["error"] == "authorization_pending"


def test_unknown_request(phone, decide):
    r = decide(phone, "no-such-request")
    assert r.status_code == 404
