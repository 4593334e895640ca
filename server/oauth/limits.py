"""Caps on pending CIBA requests (issue 13): per user and per client.

A person rarely has more than a few sign-ins waiting; hundreds from one client are a flood that
would bury the real one on the person's device. Over a cap, bc-authorize answers 429 with
``slow_down`` and a Retry-After of the seconds until the oldest pending request ends. The counts
are two prepared reads on indexes, made before the request's INSERT; two requests racing at the
cap may both pass (a soft cap).
"""

from __future__ import annotations

from ..config import Settings
from ..storage import ciba_requests
from ..storage.db import Database
from . import errors


def check_pending_caps(db: Database, settings: Settings, client_id: str, user_id: str,
                       now: float) -> None:
    for cap, kind, count_and_end in (
            (settings.max_pending_per_user, "user",
             lambda: ciba_requests.pending_count(db, now, user_id=user_id)),
            (settings.max_pending_per_client, "client",
             lambda: ciba_requests.pending_count(db, now, client_id=client_id))):
        if cap <= 0:
            continue
        count, first_end = count_and_end()
        if count >= cap:
            raise errors.TooManyPendingError(
                f"The {kind} already has {count} pending requests (at most {cap}); "
                "retry when one of them ends", retry_after=int((first_end or now) - now) + 1)
