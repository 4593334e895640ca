"""CIBA §7.1 user_code: the current TOTP (RFC 6238) of any of the user's active devices.

- a code is accepted within ``DRIFT_STEPS`` time steps either side of now (device clock drift);
- a code works once: the (device, time step) pair is recorded as used;
- failures count per user in a window of ``user_code_lockout`` seconds; after
  ``user_code_max_failures`` the user is locked out for ``user_code_lockout`` seconds, during
  which every code (right or wrong) is refused the same way, so a guesser learns nothing.

Failures are recorded in their own transaction: the caller's session is rolled back when it
answers invalid_user_code, and the count must survive that.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import pyotp
from sqlalchemy.orm import Session

from ..storage import counters, devices as device_repo, replay
from ..storage.models import User

if TYPE_CHECKING:
    from ..ports import ProviderCore

DIGITS, PERIOD, ALGORITHM = 6, 30, "SHA1"
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits, base32 (RFC 4226 §4 recommends 160)."""
    return pyotp.random_base32(32)


class UserCodeVerifier:
    """``provider.user_codes``: ``(user, code) -> bool`` (the default ``verify_user_code``
    policy hook)."""

    def __init__(self, provider: "ProviderCore") -> None:
        self.p = provider

    def __call__(self, user: User, code: str) -> bool:
        now = self.p.clock.now()
        settings = self.p.settings
        key = f"user_code:{user.id}"
        with self.p.db.session() as ws:
            row = counters.counter(ws, key, now, settings.user_code_lockout)
            if row.locked_until is not None and row.locked_until > now:
                return False
            match = self._match(ws, user.id, code.strip(), now)
            if match is not None and replay.use_once(
                    ws, f"user_code_used:{match}", now + (2 * DRIFT_STEPS + 2) * PERIOD, now):
                counters.reset(ws, key)
                return True
            row.count += 1
            if row.count >= settings.user_code_max_failures:
                row.locked_until = now + settings.user_code_lockout
            return False

    def _match(self, s: Session, user_id: str, code: str, now: float) -> str | None:
        """``device_id:step`` of the code, or None."""
        if not (code.isdigit() and len(code) == DIGITS):
            return None
        found = None
        for device in device_repo.for_user(s, user_id):
            totp = pyotp.TOTP(self.p.box.open(device.totp_secret), digits=DIGITS,
                              interval=PERIOD)
            step = int(now) // PERIOD
            for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
                # compare every candidate, so timing does not tell which device matched
                if hmac.compare_digest(totp.at((step + offset) * PERIOD), code) and found is None:
                    found = f"{device.id}:{step + offset}"
        return found
