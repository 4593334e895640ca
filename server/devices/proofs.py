"""The device's key and the two JWS it signs (docs/device-protocol.md §2, §3 and §6).

- the public JWK posted at enrollment: an EC P-256 public key, nothing else;
- device authentication ``Authorization: Device <jws>`` (typ ``device-auth+jwt``), bound to the
  method and path, with a fresh ``iat``, a short ``exp`` and a single-use ``jti``;
- the decision (typ ``device-decision+jwt``), bound to one request and the binding message shown.

Signature and claim checks live here; single use of ``jti`` is recorded by the caller in storage.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
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


_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@dataclass
class Compact:
    """A compact JWS split and decoded once (RFC 7515 §7.1), its signature not yet checked."""

    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


def _b64url(segment: str) -> bytes:
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def parse(token: str) -> Compact:
    """Split and decode a device's compact JWS, or InvalidToken. The header must be a JSON
    object naming ES256 (the only algorithm: RFC 8725 §3.1, no ``none``, no HMAC) and no
    ``crit`` extension (RFC 7515 §4.1.11: we understand none, so any is refused)."""
    try:
        if not isinstance(token, str) or token.count(".") != 2:
            raise ValueError("not a compact JWS")
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = jsonsafe.loads(_b64url(header_b64))
        payload, signature = _b64url(payload_b64), _b64url(signature_b64)
    except (jsonsafe.JSONInputError, binascii.Error, ValueError, UnicodeError):
        raise InvalidToken("the JWS is malformed") from None
    if not isinstance(header, dict):
        raise InvalidToken("the JWS is malformed")
    if header.get("alg") not in ALGORITHMS or "crit" in header:
        raise InvalidToken("the JWS signature is not valid for this device")
    return Compact(header, payload, f"{header_b64}.{payload_b64}".encode("ascii"), signature)


def unverified_kid(token: str | Compact) -> str:
    """The kid of a compact JWS before its signature is checked (to find the device's key)."""
    kid = (parse(token) if isinstance(token, str) else token).header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 128:
        raise InvalidToken("the JWS header has no kid")
    return kid


@dataclass
class Verified:
    device_id: str
    claims: dict[str, Any]


def verify(token: str | Compact, jwk_json: str, typ: str, device_id: str) -> Verified:
    """Check signature (ES256 only: r || s, 64 bytes, RFC 7518 §3.4), typ and kid; returns the
    claims as a dict."""
    jws_ = parse(token) if isinstance(token, str) else token
    sig = jws_.signature
    try:
        if len(sig) != 64:
            raise InvalidSignature
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        _public_key(jwk_json).verify(der, jws_.signing_input, _ECDSA_SHA256)
    except (InvalidSignature, ValueError, TypeError):
        raise InvalidToken("the JWS signature is not valid for this device") from None
    headers = jws_.header
    if headers.get("typ") != typ:
        raise InvalidToken(f"the JWS typ must be {typ}")
    if headers.get("kid") != device_id:
        raise InvalidToken("the JWS kid is not this device")
    try:
        claims = jsonsafe.loads(jws_.payload)
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
def _public_key(jwk_json: str) -> ec.EllipticCurvePublicKey:
    """A device's key (stored canonical by ``public_jwk``), imported once per process (keys
    never change; revocation is checked before). The point is checked to be on P-256."""
    jwk = json.loads(jwk_json)
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not an EC P-256 key")
    x, y = _b64url(jwk["x"]), _b64url(jwk["y"])
    if len(x) != 32 or len(y) != 32:
        raise ValueError("not an EC P-256 key")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
