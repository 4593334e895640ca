"""The user code (CIBA §7.1 user_code): an RFC 6238 TOTP from the secret given at enrollment."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import pyotp

_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


@dataclass(frozen=True)
class UserCode:
    code: str
    seconds_left: int
    period: int


def current_code(totp: dict[str, Any], now: float | None = None) -> UserCode:
    """The code valid at ``now`` and the seconds until it changes."""
    now = time.time() if now is None else now
    period = int(totp.get("period") or 30)
    generator = pyotp.TOTP(
        str(totp["secret"]),
        digits=int(totp.get("digits") or 6),
        digest=_DIGESTS.get(str(totp.get("algorithm") or "SHA1").upper(), hashlib.sha1),
        interval=period,
    )
    return UserCode(generator.at(int(now)), period - int(now) % period, period)
