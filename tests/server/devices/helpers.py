"""A minimal device written from docs/device-protocol.md alone (joserfc), for the provider tests.

Independent of device_app on purpose: it checks the protocol document, not one client.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey


def sign(key: ECKey, typ: str, kid: str, claims: dict[str, Any]) -> str:
    header = {"alg": "ES256", "typ": typ, "kid": kid}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key)


@dataclass
class DeviceKey:
    issuer: str
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256"))
    device_id: str = ""
    totp: dict = field(default_factory=dict)
    enrollment: dict = field(default_factory=dict)

    @property
    def public_jwk(self) -> dict:
        return self.key.as_dict(private=False)

    def enroll_body(self, code: str, name: str = "Test phone", push: str = "websocket") -> dict:
        return {"code": code, "jwk": self.public_jwk, "display_name": name, "push": push}

    def enrolled(self, body: dict) -> "DeviceKey":
        self.enrollment = body
        self.device_id = body["device_id"]
        self.totp = body["totp"]
        return self

    def auth(self, method: str, path: str, now: float | None = None, kid: str | None = None,
             **overrides) -> str:
        iat = int(time.time() if now is None else now)
        claims = {"iss": self.device_id, "aud": self.issuer, "htm": method, "htu": path,
                  "iat": iat, "exp": iat + 60, "jti": secrets.token_urlsafe(32)}
        claims.update(overrides)
        return sign(self.key, "device-auth+jwt", kid or self.device_id, claims)

    def headers(self, method: str, path: str, now: float | None = None, **overrides) -> dict:
        return {"Authorization": "Device " + self.auth(method, path, now, **overrides)}

    def decision(self, request_id: str, accept: bool, binding_message: str | None,
                 now: float | None = None, overrides: dict | None = None) -> str:
        claims = {"iss": self.device_id, "aud": self.issuer, "request_id": request_id,
                  "decision": "accept" if accept else "deny",
                  "binding_message": binding_message,
                  "iat": int(time.time() if now is None else now),
                  "jti": secrets.token_urlsafe(32)}
        claims.update(overrides or {})
        return sign(self.key, "device-decision+jwt", self.device_id, claims)


def basic(client_id: str, secret: str) -> dict:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
