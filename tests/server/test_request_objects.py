"""Signed authentication requests (CIBA §7.1.1): every rule and its invalid_request (400)."""

from __future__ import annotations

import json
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from .ciba_helpers import (
    assert_error, assertion_form, client_assertion, ec_client_key, public_jwks, rsa_client_key,
)

ISSUER = "http://op.test"


@pytest.fixture
def key():
    return rsa_client_key("bank-key")


@pytest.fixture
def bank(make_client, key):
    return make_client("bank", auth_method="private_key_jwt", jwks=public_jwks(key))


def request_object(clock, key, client_id="bank", alg="RS256", drop=(), **claims) -> str:
    now = int(clock.now())
    body = {"iss": client_id, "aud": ISSUER, "iat": now, "nbf": now, "exp": now + 300,
            "jti": uuid.uuid4().hex, "scope": "openid", "login_hint": "alice",
            "binding_message": "W4SCT", **claims}
    for name in drop:
        body.pop(name)
    header = {"alg": alg}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    return jwt.encode(header, body, key, algorithms=[alg])


def signed(http, clock, key, request: str, client_id="bank", **outside):
    alg = "ES256" if key.key_type == "EC" else "RS256"
    auth = assertion_form(client_assertion(client_id, key, ISSUER, alg=alg, now=clock.now()))
    return http.post("/bc-authorize", data={**auth, "request": request, **outside})


def test_signed_request_is_accepted(http, provider, clock, alice, bank, key):
    response = signed(http, clock, key, request_object(
        clock, key, requested_expiry=120, authorization_details=[{"type": "payment"}]))
    assert response.status_code == 200, response.json
    assert response.json["expires_in"] == 120  # requested_expiry as a JSON number
    from server.oauth import request_ids
    from server.storage import ciba_requests

    with provider.db.session() as s:
        row = ciba_requests.by_auth_req_id_hash(s, request_ids.key(response.json["auth_req_id"]))
    assert row.binding_message == "W4SCT"
    assert json.loads(row.authorization_details) == [{"type": "payment"}]


@pytest.mark.parametrize("alg, make_key", [("PS256", rsa_client_key), ("ES256", ec_client_key)])
def test_ps256_and_es256(http, clock, alice, make_client, alg, make_key):
    k = make_key("k-" + alg)
    make_client("c" + alg, auth_method="private_key_jwt", jwks=public_jwks(k))
    response = signed(http, clock, k, request_object(clock, k, client_id="c" + alg, alg=alg),
                      client_id="c" + alg)
    assert response.status_code == 200, response.json


def test_discovery_advertises_the_request_signing_algorithms(http):
    meta = http.get("/.well-known/openid-configuration").json
    assert meta["backchannel_authentication_request_signing_alg_values_supported"] == [
        "RS256", "PS256", "ES256"]


def _unsigned(clock) -> str:
    """An alg=none JWT (RFC 7519 §6.1), written by hand: joserfc refuses to make one."""
    now = int(clock.now())
    return ".".join([_b64({"alg": "none"}), _b64({
        "iss": "bank", "aud": ISSUER, "iat": now, "nbf": now, "exp": now + 300, "jti": "x",
        "scope": "openid", "login_hint": "alice"}), ""])


def _b64(value: dict) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


NOW_RULES = [
    pytest.param({"aud": "https://elsewhere.example"}, (), id="aud-not-issuer"),
    pytest.param({"iss": "someone-else"}, (), id="iss-not-client"),
    pytest.param({}, ("exp",), id="no-exp"),
    pytest.param({}, ("iat",), id="no-iat"),
    pytest.param({}, ("nbf",), id="no-nbf"),
    pytest.param({}, ("jti",), id="no-jti"),
    pytest.param({}, ("aud",), id="no-aud"),
    pytest.param({"exp": "soon"}, (), id="exp-not-a-number"),
    pytest.param({"jti": 7}, (), id="jti-not-a-string"),
    pytest.param({"login_hint": ["alice"]}, (), id="parameter-of-wrong-type"),
]


@pytest.mark.parametrize("claims, drop", NOW_RULES)
def test_claim_rules(http, clock, alice, bank, key, claims, drop):
    response = signed(http, clock, key, request_object(clock, key, drop=drop, **claims))
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("offsets", [
    pytest.param({"exp": -120}, id="expired"),
    pytest.param({"nbf": -600, "exp": 3600 - 600 + 1 + 600}, id="exp-over-60-min-after-nbf"),
    pytest.param({"nbf": 600, "exp": 900}, id="nbf-in-the-future"),
    pytest.param({"nbf": -3601 - 60, "exp": 60}, id="nbf-over-60-min-ago"),
])
def test_time_rules(http, clock, alice, bank, key, offsets):
    now = int(clock.now())
    claims = {name: now + delta for name, delta in offsets.items()}
    response = signed(http, clock, key, request_object(clock, key, **claims))
    assert_error(response, 400, "invalid_request")


def test_small_clock_skew_is_tolerated(http, clock, alice, bank, key):
    now = int(clock.now())
    response = signed(http, clock, key, request_object(clock, key, nbf=now + 30, iat=now + 30))
    assert response.status_code == 200, response.json


def test_jti_is_single_use_until_exp(http, clock, alice, bank, key):
    token = request_object(clock, key, jti="once")
    assert signed(http, clock, key, token).status_code == 200
    assert_error(signed(http, clock, key, token), 400, "invalid_request")
    again = request_object(clock, key, jti="once")  # a new object, the same jti
    assert_error(signed(http, clock, key, again), 400, "invalid_request")


@pytest.mark.parametrize("kind", ["none", "HS256", "other-key", "garbage", "tampered"])
def test_signature_rules(http, clock, alice, bank, key, kind):
    if kind == "none":
        token = _unsigned(clock)
    elif kind == "HS256":
        token = request_object(clock, OctKey.import_key("a-shared-secret-of-32-bytes-len!"),
                               alg="HS256")
    elif kind == "other-key":
        token = request_object(clock, rsa_client_key("bank-key"))
    elif kind == "garbage":
        token = "not.a.jwt"
    else:
        head, body, sig = request_object(clock, key).split(".")
        token = ".".join([head, _b64({"iss": "bank", "aud": ISSUER, "login_hint": "bob"}), sig])
    assert_error(signed(http, clock, key, token), 400, "invalid_request")


@pytest.mark.parametrize("name", ["login_hint", "scope", "binding_message", "user_code"])
def test_parameters_only_inside_the_request_object(http, clock, alice, bank, key, name):
    response = signed(http, clock, key, request_object(clock, key), **{name: "x"})
    assert_error(response, 400, "invalid_request")


def test_a_client_registered_with_a_signing_alg_must_sign(http, clock, alice, make_client):
    k = ec_client_key("strict-key")
    make_client("strict", auth_method="private_key_jwt", jwks=public_jwks(k),
                request_signing_alg="ES256")
    auth = assertion_form(client_assertion("strict", k, ISSUER, alg="ES256", now=clock.now()))
    plain = http.post("/bc-authorize", data={**auth, "scope": "openid", "login_hint": "alice"})
    assert_error(plain, 400, "invalid_request")
    ok = signed(http, clock, k, request_object(clock, k, client_id="strict", alg="ES256"),
                client_id="strict")
    assert ok.status_code == 200, ok.json


def test_a_secret_client_with_registered_keys_may_sign(http, clock, alice, make_client):
    k = rsa_client_key("kiosk-key")
    creds = make_client("signing-kiosk", jwks=public_jwks(k))
    token = request_object(clock, k, client_id="signing-kiosk")
    response = http.post("/bc-authorize", headers=creds.basic(), data={"request": token})
    assert response.status_code == 200, response.json


def test_a_client_without_keys_cannot_sign(http, clock, alice, kiosk):
    token = request_object(clock, rsa_client_key("whatever"), client_id="kiosk")
    response = http.post("/bc-authorize", headers=kiosk.basic(), data={"request": token})
    assert_error(response, 400, "invalid_request")
