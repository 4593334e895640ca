"""The loans API accepts only a valid access token of its provider (RFC 9068 §4, RFC 6750 §3)."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from server.demo.resource_api import JwksVerifier, create_resource_api, sample_loans

ISSUER = "http://op.test"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


class LocalJwks(JwksVerifier):
    """The provider's JWKS without HTTP; the HTTP path runs in the demo and browser tests."""

    def keys(self, refresh: bool = False) -> KeySet:
        return KeySet([RSAKey.import_key(KEY.as_dict(private=False))])


def token(key=KEY, typ="at+jwt", **overrides) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "user-1", "aud": ISSUER, "client_id": "kiosk", "iat": now,
              "exp": now + 600, "jti": "j1", "scope": "openid", **overrides}
    return jwt.encode({"alg": "RS256", "typ": typ, "kid": "k1"}, claims, key)


@pytest.fixture
def api():
    return create_resource_api(ISSUER, verifier=LocalJwks(ISSUER)).test_client()


def test_a_valid_token_gets_the_members_loans(api):
    response = api.get("/loans", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 200
    assert response.json == {"member": "user-1", "loans": sample_loans("user-1")}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("header, reason", [
    (None, "An access token is required"),
    ("Basic dXNlcjpwdw==", "An access token is required"),
    ("Bearer not-a-jwt", "the signature or format is not valid"),
    (f"Bearer {token(key=OTHER_KEY)}", "the signature or format is not valid"),
    (f"Bearer {token(exp=int(time.time()) - 1)}", "the access token has expired"),
    (f"Bearer {token(iss='http://evil.test')}", "issued by another provider"),
    (f"Bearer {token(aud='http://other-api.test')}", "issued for another audience"),
    (f"Bearer {token(typ='JWT')}", "not an access token (typ must be at+jwt)"),
])
def test_bad_tokens_are_refused_with_a_bearer_challenge(api, header, reason):
    response = api.get("/loans", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json["error_description"] == reason
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="library"')
    assert ('error="invalid_token"' in challenge) == ("required" not in reason)


def test_loans_are_stable_per_member_and_differ_between_members():
    assert sample_loans("a") == sample_loans("a")
    assert 2 <= len(sample_loans("a")) <= 3
    assert {l["title"] for l in sample_loans("a")} != {l["title"] for l in sample_loans("b")}
