"""Input an attacker sends gets a clear error in the spec's format, never a 500 (issue 13).

Each case here answered 500 (or was wrongly accepted) before it was fixed.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from joserfc import jws

from .ciba_helpers import CIBA, assert_error, assertion_form, public_jwks, rsa_client_key
from .devices.helpers import DeviceKey

DEEP = "[" * 50_000
OAUTH_ENDPOINTS = ["/bc-authorize", "/token", "/introspect", "/revoke"]


# -- client authentication ---------------------------------------------------------------------
@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
@pytest.mark.parametrize("header", ["Basic ", "Basic", "Basic !!!", "Basic " + "A" * 3,
                                    "Basic " + base64.b64encode(b"no-colon").decode(),
                                    "Basic " + base64.b64encode(b"\xff\xfe:x").decode()])
def test_a_malformed_basic_header_is_invalid_client(http, kiosk, path, header):
    r = http.post(path, data={"grant_type": CIBA, "auth_req_id": "x", "token": "x",
                              "scope": "openid", "login_hint": "alice"},
                  headers={"Authorization": header})
    assert_error(r, 401, "invalid_client")


def _assertion(key, claims_override: dict, raw_payload: bytes | None = None) -> str:
    now = int(time.time())
    claims = {"iss": "bank", "sub": "bank", "aud": "http://op.test", "iat": now,
              "exp": now + 60, "jti": uuid.uuid4().hex, **claims_override}
    payload = raw_payload if raw_payload is not None else \
        json.dumps(claims).replace('"EXP"', "1" + "0" * 400).encode()
    return jws.serialize_compact({"alg": "RS256", "kid": key.kid}, payload, key)


@pytest.fixture
def bank(make_client):
    key = rsa_client_key()
    make_client("bank", auth_method="private_key_jwt", jwks=public_jwks(key))
    return key


@pytest.mark.parametrize("path", ["/token", "/bc-authorize"])
def test_a_client_assertion_with_an_enormous_exp_is_invalid_client(http, alice, bank, path):
    form = {"grant_type": CIBA, "auth_req_id": "x", "scope": "openid", "login_hint": "alice",
            **assertion_form(_assertion(bank, {"exp": "EXP"}))}
    assert_error(http.post(path, data=form), 401, "invalid_client")


def test_a_client_assertion_valid_for_days_is_refused(http, alice, bank):
    # RFC 7523 §3: the server may reject a JWT whose exp is unreasonably far in the future;
    # its jti would have to be remembered as long.
    form = {"grant_type": CIBA, "auth_req_id": "x",
            **assertion_form(_assertion(bank, {"exp": int(time.time()) + 7 * 86400}))}
    body = assert_error(http.post("/token", data=form), 401, "invalid_client")
    assert "exp" in body["error_description"]


@pytest.mark.parametrize("payload", [DEEP.encode(), b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
                                     b'{"exp": NaN}', b"[]", b"\xff\xfe"])
def test_a_client_assertion_with_a_hostile_payload_is_invalid_client(http, alice, bank, payload):
    form = {"grant_type": CIBA, "auth_req_id": "x",
            **assertion_form(_assertion(bank, {}, raw_payload=payload))}
    assert_error(http.post("/token", data=form), 401, "invalid_client")


# -- nested JSON ---------------------------------------------------------------------------------
def test_deeply_nested_authorization_details_is_invalid_request(http, kiosk, alice):
    r = http.post("/bc-authorize", headers=kiosk.basic(),
                  data={"scope": "openid", "login_hint": "alice", "authorization_details": DEEP})
    body = assert_error(r, 400, "invalid_request")
    assert "nested" in body["error_description"]


def test_authorization_details_with_nan_is_invalid_request(http, kiosk, alice):
    r = http.post("/bc-authorize", headers=kiosk.basic(),
                  data={"scope": "openid", "login_hint": "alice",
                        "authorization_details": '[{"type": "payment", "amount": NaN}]'})
    assert_error(r, 400, "invalid_request")


@pytest.mark.parametrize("body", [DEEP, '{"code": ' + DEEP, '{"a": NaN}', "\ud800"])
def test_hostile_enrollment_bodies_are_invalid_request(http, body):
    r = http.post("/device/enroll", data=body.encode("utf-8", "surrogatepass"),
                  content_type="application/json")
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["error"] == "invalid_request"


def test_a_deeply_nested_decision_body_is_invalid_request(http, phone, bc_authorize_request, clock):
    request_id = bc_authorize_request()
    path = f"/device/requests/{request_id}/decision"
    r = http.post(path, data=DEEP, content_type="application/json",
                  headers=phone.headers("POST", path, clock.now()))
    assert r.status_code == 400
    assert r.get_json()["error"] == "invalid_request"


# -- device JWS claims ---------------------------------------------------------------------------
@pytest.mark.parametrize("claim", ["iat", "exp"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e400])
def test_a_device_auth_jws_with_a_non_finite_time_is_refused(http, phone, clock, claim, value):
    headers = phone.headers("GET", "/device/requests", clock.now(), **{claim: value})
    r = http.get("/device/requests", headers=headers)
    assert r.status_code == 401, r.get_json()
    # and sending it again is refused too (it was never accepted, so cannot be replayed)
    assert http.get("/device/requests", headers=headers).status_code == 401


def test_a_device_auth_jws_whose_exp_has_passed_is_refused(http, phone, clock):
    now = int(clock.now())
    headers = phone.headers("GET", "/device/requests", now, iat=now - 30, exp=now - 1)
    r = http.get("/device/requests", headers=headers)
    assert r.status_code == 401
    assert "exp" in r.get_json()["error_description"]


def test_a_device_auth_jws_with_a_deeply_nested_payload_is_refused(http, phone, clock):
    token = jws.serialize_compact({"alg": "ES256", "typ": "device-auth+jwt",
                                   "kid": phone.device_id}, DEEP.encode(), phone.key)
    r = http.get("/device/requests", headers={"Authorization": "Device " + token})
    assert r.status_code == 401


def test_a_device_jws_with_a_deeply_nested_header_is_refused(http, phone):
    header = base64.urlsafe_b64encode(DEEP.encode()).rstrip(b"=").decode()
    r = http.get("/device/requests", headers={"Authorization": f"Device {header}.e30.c2ln"})
    assert r.status_code == 401


@pytest.mark.parametrize("claims", [{"iat": float("nan")}, {"exp": float("nan")},
                                    {"exp": 1}, {"exp": "soon"}])
def test_a_decision_with_bad_times_is_refused(http, phone, bc_authorize_request, clock, claims):
    request_id = bc_authorize_request()
    path = f"/device/requests/{request_id}/decision"
    decision = phone.decision(request_id, True, "LIB-4 7F3K", clock.now(), claims)
    r = http.post(path, json={"decision": decision},
                  headers=phone.headers("POST", path, clock.now()))
    assert r.status_code == 401, r.get_json()
    assert r.get_json()["error"] == "invalid_token"


def test_a_decision_may_carry_an_exp_in_the_future(http, phone, bc_authorize_request, clock):
    request_id = bc_authorize_request()
    path = f"/device/requests/{request_id}/decision"
    decision = phone.decision(request_id, True, "LIB-4 7F3K", clock.now(),
                              {"exp": int(clock.now()) + 60})
    r = http.post(path, json={"decision": decision},
                  headers=phone.headers("POST", path, clock.now()))
    assert r.status_code == 200, r.get_json()


@pytest.fixture
def phone(provider, http, alice):
    from urllib.parse import parse_qs, urlsplit

    offer = provider.devices.new_enrollment(alice.id)
    code = parse_qs(urlsplit(offer.uri).query)["code"][0]
    device = DeviceKey("http://op.test")
    r = http.post("/device/enroll", json=device.enroll_body(code, "phone"))
    assert r.status_code == 201, r.get_json()
    return device.enrolled(r.get_json())


@pytest.fixture
def bc_authorize_request(http, kiosk, phone, clock):
    """Creates a request for alice; returns the device request id her phone sees."""

    def make() -> str:
        r = http.post("/bc-authorize", headers=kiosk.basic(),
                      data={"scope": "openid", "login_hint": "alice",
                            "binding_message": "LIB-4 7F3K"})
        assert r.status_code == 200, r.get_json()
        listed = http.get("/device/requests",
                          headers=phone.headers("GET", "/device/requests", clock.now()))
        return listed.get_json()["requests"][0]["request_id"]

    return make



@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
def test_a_repeated_parameter_with_a_non_ascii_name_is_invalid_request(http, kiosk, path):
    # found by tests/server/test_fuzz.py: the name was echoed into error_description, which
    # RFC 6749 §5.2 limits to ASCII, and Authlib raised ValueError (a 500)
    r = http.post(path, data="K%C3%9DQ=1&K%C3%9DQ=2", headers=kiosk.basic(),
                  content_type="application/x-www-form-urlencoded")
    body = assert_error(r, 400, "invalid_request")
    assert body["error_description"] == "Parameter K?Q is repeated"


# -- inputs of issues 10 and 11 (signed requests, registration, passkeys) ------------------------
@pytest.mark.parametrize("payload", [DEEP.encode(), b'{"exp": NaN, "iss": "bank"}',
                                     b'{"nbf": 1' + b"0" * 400 + b"}", b"\xff\xfe"])
def test_a_request_object_with_a_hostile_payload_is_invalid_request(http, alice, bank, payload):
    """CIBA §7.1.1 request objects are parsed as carefully as client assertions."""
    form = {**assertion_form(_assertion(bank, {})),
            "request": jws.serialize_compact({"alg": "RS256", "kid": bank.kid}, payload, bank)}
    assert_error(http.post("/bc-authorize", data=form), 400, "invalid_request")


@pytest.mark.parametrize("body", [DEEP, '{"client_name": ' + DEEP, '{"client_name": NaN}'])
def test_hostile_registration_bodies_are_invalid_client_metadata(http, provider, body):
    from server.registration import issue_initial_token

    token = issue_initial_token(provider, "tests", 3600, False, "operator:olga")[0]
    r = http.post("/register", data=body, content_type="application/json",
                  headers={"Authorization": f"Bearer {token}"})
    assert_error(r, 400, "invalid_client_metadata")


def test_a_hostile_passkey_body_is_a_clear_400(http):
    page = http.get("/account/login").get_data(as_text=True)
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = http.post("/account/passkeys/signin", data='{"credential": ' + DEEP,
                  content_type="application/json", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400
