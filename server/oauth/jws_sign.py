"""Compact JWS of our own tokens (RFC 7515 §7.1), signed directly with cryptography.

The token endpoint signs two JWTs per response (the access token, RFC 9068, and the ID token,
OIDC Core §2). joserfc's generic path (header registry checks, key lookup, payload conversion)
cost about as much as the ES256 signature itself; here the header segment is built once per
(alg, kid, typ) and only the payload is encoded per token. The bytes are what joserfc makes:
the header as compact ASCII JSON, the claims as compact UTF-8 JSON, base64url without padding.
Verification and every other JOSE use stay on joserfc.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, RSAKey

_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(_SHA256)
_PKCS1 = padding.PKCS1v15()
# RFC 7518 §3.5: PS256 uses MGF1 with SHA-256 and a salt as long as the hash (32 bytes).
_PSS = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=32)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@lru_cache(maxsize=64)
def _header_segment(alg: str, kid: str, typ: str) -> bytes:
    # The members and order joserfc's jwt.encode writes: typ first, then alg and kid.
    header = {"typ": typ, "alg": alg, "kid": kid}
    return _b64(json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode("ascii"))


def sign(key: RSAKey | ECKey, alg: str, typ: str, claims: dict[str, Any]) -> str:
    """The compact JWS of ``claims`` with header {typ, alg, kid}, signed by ``key``."""
    payload = _b64(json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode())
    signing_input = _header_segment(alg, key.kid, typ) + b"." + payload
    private = key.private_key
    if alg == "ES256":
        if not isinstance(key, ECKey) or key.curve_name != "P-256":
            raise ValueError("ES256 needs a P-256 key")
        # RFC 7518 §3.4: the JWS signature is R || S, each 32 bytes, not the DER sequence.
        r, s = decode_dss_signature(private.sign(signing_input, _ECDSA_SHA256))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg in ("RS256", "PS256"):
        if not isinstance(key, RSAKey):
            raise ValueError(f"{alg} needs an RSA key")
        signature = private.sign(signing_input, _PKCS1 if alg == "RS256" else _PSS, _SHA256)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    return (signing_input + b"." + _b64(signature)).decode("ascii")
