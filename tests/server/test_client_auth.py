"""Client authentication at the backchannel and token endpoints (CIBA §7.1: "the same way as
at the token endpoint"): RFC 6749 §2.3.1 client_secret_basic / client_secret_post and RFC 7523
client_secret_jwt / private_key_jwt (OIDC Core §9), with single-use jti and aud checks."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable

import pytest

from .ciba_helpers import (
    CIBA, assert_error, assertion_form, client_assertion, decide_request, ec_client_key,
    public_jwks, rsa_client_key, secret_key,
)

ISSUER = "http://op.test"
ENDPOINTS = {"bc-authorize": "/bc-authorize", "token": "/token"}


@dataclass
class Authenticator:
    """A registered client and the way it proves who it is on each request."""

    client_id: str
    auth: Callable[..., tuple[dict, dict]]  # (aud, jti) -> (headers, form fields)

    def credentials(self, aud: str = ISSUER, jti: str | None = None) -> tuple[dict, dict]:
        return self.auth(aud=aud, jti=jti)


def _register(make_client, method: str, alg: str = "") -> Authenticator:
    cid = method.replace("_", "-")
    if method == "client_secret_basic":
        creds = make_client(cid, auth_method=method)
        return Authenticator(cid, lambda aud, jti: (creds.basic(), {}))
    if method == "client_secret_post":
        creds = make_client(cid, auth_method=method)
        return Authenticator(cid, lambda aud, jti: (
            {}, {"client_id": cid, "client_secret": creds.secret}))
    if method == "client_secret_jwt":
        creds = make_client(cid, auth_method=method)
        key = secret_key(creds.secret)
        return Authenticator(cid, lambda aud, jti: ({}, assertion_form(
            client_assertion(cid, key, aud, alg="HS256", jti=jti))))
    key = ec_client_key() if alg == "ES256" else rsa_client_key()
    make_client(cid, auth_method=method, jwks=public_jwks(key))
    return Authenticator(cid, lambda aud, jti: ({}, assertion_form(
        client_assertion(cid, key, aud, alg=alg or "RS256", jti=jti))))


METHODS = [
    pytest.param("client_secret_basic", "", id="client_secret_basic"),
    pytest.param("client_secret_post", "", id="client_secret_post"),
    pytest.param("client_secret_jwt", "", id="client_secret_jwt-HS256"),
    pytest.param("private_key_jwt", "RS256", id="private_key_jwt-RS256"),
    pytest.param("private_key_jwt", "ES256", id="private_key_jwt-ES256"),
]


def _bc_authorize(http, who: Authenticator, aud: str = ISSUER, jti: str | None = None):
    headers, fields = who.credentials(aud, jti)
    return http.post("/bc-authorize", headers=headers,
                     data={"scope": "openid", "login_hint": "alice", **fields})


def _token(http, who: Authenticator, req_id: str, aud: str = ISSUER, jti: str | None = None):
    headers, fields = who.credentials(aud, jti)
    return http.post("/token", headers=headers,
                     data={"grant_type": CIBA, "auth_req_id": req_id, **fields})


@pytest.mark.parametrize("method, alg", METHODS)
def test_method_authenticates_at_both_endpoints(http, alice, make_client, provider, method, alg):
    who = _register(make_client, method, alg)
    started = _bc_authorize(http, who)
    assert started.status_code == 200, started.json
    req_id = started.json["auth_req_id"]
    assert_error(_token(http, who, req_id), 400, "authorization_pending")
    decide_request(provider, req_id)
    done = _token(http, who, req_id)
    assert done.status_code == 200, done.json
    assert done.json["token_type"] == "Bearer"


@pytest.mark.parametrize("method, alg", [p for p in METHODS if "jwt" in p.values[0]])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_assertion_jti_is_single_use(http, alice, make_client, provider, method, alg, endpoint):
    who = _register(make_client, method, alg)
    req_id = _bc_authorize(http, who).json["auth_req_id"]
    send = (lambda: _bc_authorize(http, who, jti="once")) if endpoint == "bc-authorize" \
        else (lambda: _token(http, who, req_id, jti="once"))
    first = send()
    assert first.status_code in (200, 400), first.json  # 400: authorization_pending
    assert first.json.get("error") != "invalid_client"
    assert_error(send(), 401, "invalid_client")


@pytest.mark.parametrize("method, alg", [p for p in METHODS if "jwt" in p.values[0]])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("aud", ["issuer", "endpoint", "list-with-issuer"])
def test_assertion_audience_accepted(http, alice, make_client, method, alg, endpoint, aud):
    who = _register(make_client, method, alg)
    audience = {"issuer": ISSUER, "endpoint": ISSUER + ENDPOINTS[endpoint],
                "list-with-issuer": [ISSUER, "https://elsewhere.example"]}[aud]
    req_id = _bc_authorize(http, who).json["auth_req_id"]
    if endpoint == "bc-authorize":
        assert _bc_authorize(http, who, aud=audience).status_code == 200
    else:
        assert_error(_token(http, who, req_id, aud=audience), 400, "authorization_pending")


@pytest.mark.parametrize("method, alg", [p for p in METHODS if "jwt" in p.values[0]])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("aud", ["https://other-op.example", ISSUER + "/", ISSUER + "/userinfo",
                                 "kiosk"])
def test_assertion_wrong_audience_refused(http, alice, make_client, method, alg, endpoint, aud):
    who = _register(make_client, method, alg)
    req_id = _bc_authorize(http, who).json["auth_req_id"]
    response = _bc_authorize(http, who, aud=aud) if endpoint == "bc-authorize" \
        else _token(http, who, req_id, aud=aud)
    assert_error(response, 401, "invalid_client")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_private_key_jwt_signed_by_another_key(http, alice, make_client, endpoint):
    key, stranger = rsa_client_key("mine"), rsa_client_key("mine")
    make_client("pkj", auth_method="private_key_jwt", jwks=public_jwks(key))
    forged = assertion_form(client_assertion("pkj", stranger, ISSUER))
    response = http.post(ENDPOINTS[endpoint], data={
        "scope": "openid", "login_hint": "alice", "grant_type": CIBA, "auth_req_id": "x",
        **forged} if endpoint == "token" else {"scope": "openid", "login_hint": "alice", **forged})
    assert_error(response, 401, "invalid_client")


@pytest.mark.parametrize("case", ["expired", "iss-not-sub", "no-jti", "wrong-secret",
                                  "secret-client-sends-rsa", "alg-none"])
def test_bad_assertions_refused(http, alice, make_client, clock, case):
    from joserfc import jwt
    creds = make_client("hmac", auth_method="client_secret_jwt")
    key = secret_key(creds.secret)
    now = int(clock.now())
    claims = {"iss": "hmac", "sub": "hmac", "aud": ISSUER, "iat": now, "exp": now + 60,
              "jti": f"j-{case}"}
    if case == "expired":
        claims.update(iat=now - 600, exp=now - 300)
    elif case == "iss-not-sub":
        claims["iss"] = "someone-else"
    elif case == "no-jti":
        del claims["jti"]
    if case == "wrong-secret":
        key = secret_key("not-the-secret-" * 3)
    if case == "secret-client-sends-rsa":
        token = jwt.encode({"alg": "RS256"}, claims, rsa_client_key())
    elif case == "alg-none":
        token = (_b64({"alg": "none"}) + "." + _b64(claims) + ".")
    else:
        token = jwt.encode({"alg": "HS256"}, claims, key)
    response = http.post("/bc-authorize", data={"scope": "openid", "login_hint": "alice",
                                                 **assertion_form(token)})
    assert_error(response, 401, "invalid_client")


def _b64(value: dict) -> str:
    import json
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("registered, used", [
    ("client_secret_basic", "client_secret_post"),
    ("client_secret_post", "client_secret_basic"),
    ("client_secret_jwt", "client_secret_basic"),
    ("private_key_jwt", "client_secret_basic"),
])
def test_only_the_registered_method_is_accepted(http, alice, make_client, registered, used):
    key = rsa_client_key()
    creds = make_client("c", auth_method=registered,
                        jwks=public_jwks(key) if registered == "private_key_jwt" else None,
                        secret="a-secret-of-decent-length-1234567890")
    secret = "a-secret-of-decent-length-1234567890"
    headers, fields = {}, {}
    if used == "client_secret_basic":
        headers = {"Authorization": "Basic " + base64.b64encode(f"c:{secret}".encode()).decode()}
    else:
        fields = {"client_id": "c", "client_secret": secret}
    assert creds.client_id == "c"
    response = http.post("/bc-authorize", headers=headers,
                         data={"scope": "openid", "login_hint": "alice", **fields})
    assert_error(response, 401, "invalid_client")


def test_introspection_accepts_private_key_jwt(http, alice, make_client, provider):
    key = rsa_client_key()
    make_client("rs", auth_method="private_key_jwt", jwks=public_jwks(key))
    kiosk = make_client("kiosk")
    started = http.post("/bc-authorize", headers=kiosk.basic(),
                        data={"scope": "openid", "login_hint": "alice"})
    decide_request(provider, started.json["auth_req_id"])
    token = http.post("/token", headers=kiosk.basic(), data={
        "grant_type": CIBA, "auth_req_id": started.json["auth_req_id"]}).json["access_token"]
    response = http.post("/introspect", data={
        "token": token, **assertion_form(client_assertion("rs", key, ISSUER + "/introspect"))})
    assert response.status_code == 200, response.json
    assert response.json["active"] is True
