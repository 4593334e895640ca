"""Small helpers shared by the provider-core tests: a client's requests, decisions, assertions.

Everything here speaks HTTP through the Flask test client, as a consumption device would; only
``decide_request`` reaches into the core, standing in for a person pressing Accept or Deny.
"""

from __future__ import annotations

import json
import time
import uuid

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from server.oauth import request_ids
from server.oauth.decisions import decide
from server.storage import ciba_requests

CIBA = "urn:openid:params:grant-type:ciba"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"


def assert_error(response, status: int, error: str) -> dict:
    """An RFC 6749 §5.2 error response: status, JSON, no-store, and a clean error_description."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["error"] == error, body
    # error_description is printable ASCII without " or \
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in body.get("error_description", ""))
    return body


def bc_authorize(http, creds, headers=None, **params):
    """POST /bc-authorize with client_secret_basic unless headers say otherwise."""
    data = {"scope": "openid", "login_hint": "alice", **params}
    data = {k: v for k, v in data.items() if v is not None}
    return http.post("/bc-authorize", data=data,
                     headers=creds.basic() if headers is None else headers)


def auth_req_id(http, creds, **params) -> str:
    response = bc_authorize(http, creds, **params)
    assert response.status_code == 200, response.json
    return response.json["auth_req_id"]


def poll(http, creds, req_id: str, headers=None):
    return http.post("/token", data={"grant_type": CIBA, "auth_req_id": req_id},
                     headers=creds.basic() if headers is None else headers)


def decide_request(provider, req_id: str, approve: bool = True, grouped: bool = False):
    """What the user's Accept or Deny does: as the approval page calls it (the decision in a
    transaction of its own), or ``grouped`` as the devices and the conformance hook do (they
    read the request's delivery mode first: its decision joins the group commit)."""
    with provider.db.session() as s:
        row = ciba_requests.by_auth_req_id_hash(s, request_ids.key(req_id))
    return decide(provider, row.id, approve, "test", row.delivery_mode if grouped else None)


def rsa_client_key(kid: str = "client-rsa") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})


def ec_client_key(kid: str = "client-ec") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig"})


def public_jwks(*keys) -> dict:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def client_assertion(client_id: str, key, aud: str, *, alg: str = "RS256", jti: str | None = None,
                     exp_in: int = 60, now: float | None = None) -> str:
    """An RFC 7523 §3 client assertion (client_secret_jwt with an OctKey, else private_key_jwt)."""
    now = int(now if now is not None else time.time())
    header = {"alg": alg}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + exp_in,
              "jti": jti or uuid.uuid4().hex}
    return jwt.encode(header, claims, key)


def assertion_form(assertion: str) -> dict:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


def secret_key(secret: str) -> OctKey:
    return OctKey.import_key(secret)


def verify_jwt(token: str, jwks: dict, algs: list[str]):
    """Decode and verify a JWT against a published JWKS document; returns joserfc's Token."""
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=algs)


def b64url_len_bits(value: str) -> int:
    """Bits of data in a base64url string without padding."""
    return len(value) * 6 // 8 * 8


def dumps(value) -> str:
    return json.dumps(value)
