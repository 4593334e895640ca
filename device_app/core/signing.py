"""The two JWS a device signs (docs/device-protocol.md §3 and §6), both ES256 with its key.

- device authentication: ``Authorization: Device <jws>`` on every call after enrollment, bound
  to the method and path, fresh ``iat`` and single-use ``jti``;
- decision: the signed Accept or Deny for one request, bound to the binding message shown.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey

AUTH_TYP = "device-auth+jwt"
DECISION_TYP = "device-decision+jwt"
AUTH_LIFETIME = 60  # seconds; the protocol allows at most 120


def new_jti() -> str:
    """A fresh random identifier with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def _sign(typ: str, device_id: str, claims: dict[str, Any], key: ECKey) -> str:
    header = {"alg": "ES256", "typ": typ, "kid": device_id}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, key)


def device_auth_jws(
    key: ECKey, device_id: str, audience: str, method: str, path: str, now: float | None = None
) -> str:
    """The device-auth JWS for one call: ``method`` and ``path`` (no query string) of the request."""
    iat = int(time.time() if now is None else now)
    claims = {
        "iss": device_id,
        "aud": audience,
        "htm": method.upper(),
        "htu": path.split("?", 1)[0],
        "iat": iat,
        "exp": iat + AUTH_LIFETIME,
        "jti": new_jti(),
    }
    return _sign(AUTH_TYP, device_id, claims, key)


def decision_jws(
    key: ECKey,
    device_id: str,
    audience: str,
    request_id: str,
    decision: str,
    binding_message: str | None,
    now: float | None = None,
) -> str:
    """The signed decision: ``decision`` is "accept" or "deny"; the binding message as shown."""
    if decision not in ("accept", "deny"):
        raise ValueError("decision must be 'accept' or 'deny'")
    claims = {
        "iss": device_id,
        "aud": audience,
        "request_id": request_id,
        "decision": decision,
        "binding_message": binding_message,
        "iat": int(time.time() if now is None else now),
        "jti": new_jti(),
    }
    return _sign(DECISION_TYP, device_id, claims, key)
