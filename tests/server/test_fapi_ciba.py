"""The FAPI-CIBA client profile (``--fapi``): each rule it adds, with its exact error."""

from __future__ import annotations

import uuid

import pytest
from joserfc import jwt

from server.admin import AdminError

from .ciba_helpers import (
    CIBA, ASSERTION_TYPE, assert_error, decide_request, ec_client_key, public_jwks,
    rsa_client_key, verify_jwt,
)
from .test_mtls import tls

ISSUER = "http://op.test"


def sign(key, alg: str, claims: dict) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def assertion(client_id: str, key, alg: str, now: float) -> dict:
    claims = {"iss": client_id, "sub": client_id, "aud": ISSUER, "iat": int(now),
              "exp": int(now) + 60, "jti": uuid.uuid4().hex}
    return {"client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sign(key, alg, claims)}


def request_object(client_id: str, key, alg: str, now: float, **claims) -> str:
    body = {"iss": client_id, "aud": ISSUER, "iat": int(now), "nbf": int(now),
            "exp": int(now) + 300, "jti": uuid.uuid4().hex, "scope": "openid",
            "login_hint": "alice", "binding_message": "PAY 42", **claims}
    return sign(key, alg, {k: v for k, v in body.items() if v is not None})


@pytest.fixture
def settings(settings, pki):
    settings.tls_client_ca = str(pki.ca)
    return settings


@pytest.fixture
def bank(make_client, pki):
    """A FAPI private_key_jwt client signing with PS256, calling over mTLS for bound tokens."""
    key = rsa_client_key("bank-ps256")
    make_client("bank", auth_method="private_key_jwt", jwks=public_jwks(key), fapi=True)
    cert, _ = pki.client("bank")
    return key, tls(pki, cert)


def bc(http, clock, key, environ, *, assertion_alg="PS256", request=None, **outside):
    form = {**assertion("bank", key, assertion_alg, clock.now()), **outside}
    if request is not False:
        form["request"] = request or request_object("bank", key, "PS256", clock.now())
    return http.post("/bc-authorize", environ_base=environ, data=form)


def test_fapi_flow_gives_ps256_tokens_bound_to_the_certificate(http, provider, clock, alice,
                                                               bank):
    key, environ = bank
    response = bc(http, clock, key, environ)
    assert response.status_code == 200, response.json
    req = response.json["auth_req_id"]
    decide_request(provider, req)
    response = http.post("/token", environ_base=environ, data={
        **assertion("bank", key, "PS256", clock.now()), "grant_type": CIBA, "auth_req_id": req})
    assert response.status_code == 200, response.json
    jwks = http.get("/jwks").json
    access = verify_jwt(response.json["access_token"], jwks, ["PS256"])
    assert access.header["alg"] == "PS256" and "x5t#S256" in access.claims["cnf"]
    assert verify_jwt(response.json["id_token"], jwks, ["PS256"]).header["alg"] == "PS256"


def test_unsigned_request_is_invalid_request(http, clock, alice, bank):
    key, environ = bank
    response = bc(http, clock, key, environ, request=False, scope="openid", login_hint="alice",
                  binding_message="PAY 42")
    assert_error(response, 400, "invalid_request")


def test_request_object_signed_with_rs256_is_invalid_request(http, clock, alice, bank):
    key, environ = bank
    token = request_object("bank", key, "RS256", clock.now())
    assert_error(bc(http, clock, key, environ, request=token), 400, "invalid_request")


def test_request_object_lifetime_over_60_minutes_is_invalid_request(http, clock, alice, bank):
    key, environ = bank
    now = clock.now()
    token = request_object("bank", key, "PS256", now, exp=int(now) + 3601)
    assert_error(bc(http, clock, key, environ, request=token), 400, "invalid_request")


def test_without_binding_message_or_authorization_details_is_invalid_request(http, clock, alice,
                                                                             bank):
    key, environ = bank
    token = request_object("bank", key, "PS256", clock.now(), binding_message=None)
    assert_error(bc(http, clock, key, environ, request=token), 400, "invalid_request")
    token = request_object("bank", key, "PS256", clock.now(), binding_message=None,
                           authorization_details=[{"type": "payment_initiation"}])
    assert bc(http, clock, key, environ, request=token).status_code == 200


def test_client_assertion_signed_with_rs256_is_invalid_client(http, clock, alice, bank):
    key, environ = bank
    assert_error(bc(http, clock, key, environ, assertion_alg="RS256"), 401, "invalid_client")


def test_token_request_without_the_certificate_is_invalid_request(http, provider, clock, alice,
                                                                  bank):
    key, environ = bank
    req = bc(http, clock, key, environ).json["auth_req_id"]
    decide_request(provider, req)
    response = http.post("/token", data={**assertion("bank", key, "PS256", clock.now()),
                                         "grant_type": CIBA, "auth_req_id": req})
    assert_error(response, 400, "invalid_request")


def test_fapi_with_tls_client_auth_and_es256(http, provider, clock, alice, make_client, pki):
    key = ec_client_key("teller-es256")
    make_client("teller", auth_method="tls_client_auth", tls_subject_dn="CN=teller,O=Example",
                jwks=public_jwks(key), fapi=True)
    environ = tls(pki, pki.client("teller")[0])
    token = request_object("teller", key, "ES256", clock.now())
    response = http.post("/bc-authorize", environ_base=environ,
                         data={"client_id": "teller", "request": token})
    assert response.status_code == 200, response.json


def test_fapi_client_registered_for_es256_gets_es256_tokens(http, provider, clock, alice,
                                                            make_client, pki):
    """A FAPI client's access token follows its registered ID token algorithm (PS256 or
    ES256, FAPI 1 Advanced §8.6), whatever CIBA_ACCESS_TOKEN_SIGNING_ALG says."""
    key = ec_client_key("teller-es256")
    make_client("teller", auth_method="tls_client_auth", tls_subject_dn="CN=teller,O=Example",
                jwks=public_jwks(key), fapi=True, id_token_signed_response_alg="ES256")
    environ = tls(pki, pki.client("teller")[0])
    provider.settings.access_token_signing_alg = "RS256"  # not FAPI's: not used for FAPI
    response = http.post("/bc-authorize", environ_base=environ, data={
        "client_id": "teller", "request": request_object("teller", key, "ES256", clock.now())})
    assert response.status_code == 200, response.json
    req = response.json["auth_req_id"]
    decide_request(provider, req)
    response = http.post("/token", environ_base=environ, data={
        "client_id": "teller", "grant_type": CIBA, "auth_req_id": req})
    assert response.status_code == 200, response.json
    jwks = http.get("/jwks").json
    access = verify_jwt(response.json["access_token"], jwks, ["ES256"])
    assert access.header["alg"] == "ES256" and "x5t#S256" in access.claims["cnf"]
    assert verify_jwt(response.json["id_token"], jwks, ["ES256"]).header["alg"] == "ES256"


@pytest.mark.parametrize("kwargs, message", [
    ({"auth_method": "client_secret_basic"}, "authenticate with"),
    ({"auth_method": "client_secret_jwt"}, "authenticate with"),
    ({"delivery_mode": "push", "notification_endpoint": "https://bank.example/cb"}, "push"),
    ({"request_signing_alg": "RS256"}, "PS256 and ES256"),
    ({"id_token_signed_response_alg": "RS256"}, "PS256 and ES256"),
    ({"bound_tokens": False}, "certificate-bound"),
    ({"jwks": None, "auth_method": "tls_client_auth", "tls_subject_dn": "CN=x"}, "sign"),
])
def test_registration_refuses_what_the_profile_forbids(make_client, kwargs, message):
    spec = {"auth_method": "private_key_jwt", "jwks": public_jwks(rsa_client_key()), "fapi": True,
            **kwargs}
    with pytest.raises(AdminError, match=message):
        make_client("fapi-bad", **spec)


def test_ping_is_allowed(make_client):
    metadata = make_client("fapi-ping", auth_method="private_key_jwt",
                           jwks=public_jwks(rsa_client_key()), fapi=True, delivery_mode="ping",
                           notification_endpoint="https://bank.example/cb").metadata
    assert metadata["fapi_ciba"] is True
    assert metadata["tls_client_certificate_bound_access_tokens"] is True
    assert metadata["id_token_signed_response_alg"] == "PS256"


