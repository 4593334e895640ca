"""The device's key and the two JWS it signs (docs/device-protocol.md §2, §3 and §6).

- the public JWK posted at enrollment: an EC P-256 public key, nothing else;
- device authentication ``Authorization: Device <jws>`` (typ ``device-auth+jwt``), bound to the
  method and path, with a fresh ``iat``, a short ``exp`` and a single-use ``jti``;
- the decision (typ ``device-decision+jwt``), bound to one request and the binding message shown.

Signature and claim checks live here; single use of ``jti`` is recorded by the caller in storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from .. import jsonsafe
from .errors import InvalidRequest, InvalidToken

AUTH_TYP = "device-auth+jwt"
DECISION_TYP = "device-decision+jwt"
ALGORITHMS = ["ES256"]
#: Longest accepted lifetime (exp - iat) of a device-auth JWS.
MAX_AUTH_LIFETIME = 120
#: Longest accepted jti; the protocol asks for at least 128 bits of randomness.
MIN_JTI, MAX_JTI = 16, 200


def public_jwk(value: Any) -> dict[str, str]:
    """The canonical public P-256 JWK (kty, crv, x, y), or InvalidRequest."""
    if not isinstance(value, dict) or value.get("kty") != "EC" or value.get("crv") != "P-256":
        raise InvalidRequest("jwk must be a public EC P-256 key")
    if "d" in value:
        raise InvalidRequest("jwk must not contain the private key")
    try:
        key = ECKey.import_key({k: value.get(k) for k in ("kty", "crv", "x", "y")})
    except (JoseError, ValueError, TypeError):
        raise InvalidRequest("jwk is not a valid EC P-256 public key") from None
    return {k: v for k, v in key.as_dict(private=False).items() if k in ("kty", "crv", "x", "y")}


def unverified_kid(token: str) -> str:
    """The kid of a compact JWS before its signature is checked (to find the device's key)."""
    try:
        if not jsonsafe.compact_jws_ok(token):
            raise ValueError("malformed compact JWS")
        headers = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise InvalidToken("the JWS is malformed") from None
    kid = headers.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 128:
        raise InvalidToken("the JWS header has no kid")
    return kid


@dataclass
class Verified:
    device_id: str
    claims: dict[str, Any]


def verify(token: str, jwk_json: str, typ: str, device_id: str) -> Verified:
    """Check signature (ES256 only), typ and kid; returns the claims as a dict."""
    try:
        obj = jws.deserialize_compact(token, _public_key(jwk_json), algorithms=ALGORITHMS)
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise InvalidToken("the JWS signature is not valid for this device") from None
    headers = obj.headers()
    if headers.get("typ") != typ:
        raise InvalidToken(f"the JWS typ must be {typ}")
    if headers.get("kid") != device_id:
        raise InvalidToken("the JWS kid is not this device")
    try:
        claims = jsonsafe.loads(obj.payload)
    except jsonsafe.JSONInputError as exc:
        raise InvalidToken(f"the JWS payload: {exc}") from None
    if not isinstance(claims, dict):
        raise InvalidToken("the JWS payload is not a JSON object")
    return Verified(device_id, claims)


def check_common(claims: dict[str, Any], device_id: str, issuer: str, now: float,
                 skew: int) -> None:
    """iss, aud, iat freshness and the shape of jti, shared by both JWS kinds."""
    if claims.get("iss") != device_id:
        raise InvalidToken("iss must be the device_id")
    aud = claims.get("aud")
    if aud != issuer and not (isinstance(aud, list) and issuer in aud):
        raise InvalidToken("aud must be the provider's issuer")
    iat = claims.get("iat")
    if not jsonsafe.finite_number(iat) or abs(now - iat) > skew:
        raise InvalidToken("iat is missing or not fresh")
    if "exp" in claims:
        # Optional on a decision, required on device-auth (check_auth): a number, not passed
        # (on the provider's clock, no leeway: exp is the device's own promise), and at most
        # MAX_AUTH_LIFETIME after iat.
        exp = claims["exp"]
        if not jsonsafe.finite_number(exp) or exp <= now or exp - iat > MAX_AUTH_LIFETIME:
            raise InvalidToken("exp is not a number, has passed, or is too far after iat")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not MIN_JTI <= len(jti) <= MAX_JTI:
        raise InvalidToken("jti is missing or too short")


def check_auth(claims: dict[str, Any], device_id: str, issuer: str, method: str, path: str,
               now: float, skew: int) -> float:
    """Device-auth claims (protocol §3); returns the time until which the jti must be kept."""
    if "exp" not in claims:
        raise InvalidToken("exp is missing")
    check_common(claims, device_id, issuer, now, skew)
    exp = claims["exp"]
    if claims.get("htm") != method.upper():
        raise InvalidToken("htm does not match the request method")
    if claims.get("htu") != path:
        raise InvalidToken("htu does not match the request path")
    return max(exp, claims["iat"]) + skew


def decision_of(claims: dict[str, Any], request_id: str,
                binding_message: str | None) -> bool:
    """Decision claims (protocol §6) against the request shown; True for accept."""
    if claims.get("request_id") != request_id:
        raise InvalidRequest("request_id in the decision is not this request")
    decision = claims.get("decision")
    if decision not in ("accept", "deny"):
        raise InvalidRequest('decision must be "accept" or "deny"')
    if "binding_message" not in claims or claims["binding_message"] != binding_message:
        raise InvalidRequest("binding_message differs from the request's")
    return decision == "accept"


@lru_cache(maxsize=20_000)
def _public_key(jwk_json: str) -> ECKey:
    """A device's key, imported once per process (keys never change; revocation is checked
    before)."""
    return ECKey.import_key(json.loads(jwk_json))
