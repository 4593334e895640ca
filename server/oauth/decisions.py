"""Completing a CIBA request: the one place every approval path ends (device, console page,
conformance hook), and where expiry is noticed and announced.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from ..storage import ciba_requests
from ..storage.models import CibaRequest

if TYPE_CHECKING:
    from ..provider import Provider


class Outcome(str, Enum):
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"


def decide(provider: "Provider", request_id: str, approve: bool, decided_by: str) -> Outcome:
    """Approve or deny a pending request exactly once; tells the user's other devices."""
    status = "approved" if approve else "denied"
    now = provider.clock.now()
    with provider.db.session() as s:
        req = ciba_requests.get(s, request_id)
        if req is None:
            return Outcome.NOT_FOUND
        if not ciba_requests.decide(s, request_id, status, decided_by, now):
            s.refresh(req)
            return Outcome.ALREADY_DECIDED if req.status != "pending" else Outcome.EXPIRED
        s.refresh(req)
    provider.notifier.request_resolved(req.user_id, req.device_request_id, status)
    provider.after_decision(req)
    return Outcome(status)


def cancel(provider: "Provider", request_id: str, cancelled_by: str,
           approved_too: bool = False) -> Outcome:
    """End a pending request that nobody should decide any more (an extension, not CIBA).

    ``cancelled_by`` is "client" when the consumption device gave up, or "operator:<username>".
    The client's later polls get access_denied (CIBA §11 has no "cancelled" error; the request
    will never be approved, which is what access_denied tells), devices withdraw the card, and a
    late device decision is refused as already decided (status "cancelled").

    ``approved_too``: an approved request whose tokens were not fetched yet is cancelled as well,
    so they can never be (the client says it does not want them); devices hear "cancelled".
    """
    now = provider.clock.now()
    with provider.db.session() as s:
        req = ciba_requests.get(s, request_id)
        if req is None:
            return Outcome.NOT_FOUND
        if not ciba_requests.decide(s, request_id, "cancelled", cancelled_by, now) and not (
                approved_too and ciba_requests.withdraw_approval(s, request_id, cancelled_by, now)):
            s.refresh(req)
            return Outcome.ALREADY_DECIDED if req.status != "pending" else Outcome.EXPIRED
        s.refresh(req)
    provider.notifier.request_resolved(req.user_id, req.device_request_id, "cancelled")
    provider.after_decision(req)
    return Outcome.CANCELLED


def state_of(req: CibaRequest, now: float) -> str:
    """pending | approved | denied | cancelled | exchanged | expired, with expiry applied."""
    if req.status == "pending" and req.expires_at <= now:
        return "expired"
    return req.status


def sweep_expired(provider: "Provider") -> int:
    """Mark pending requests past their expiry and withdraw them from devices."""
    now = provider.clock.now()
    with provider.db.session() as s:
        rows = ciba_requests.expired_pending(s, now)
        ciba_requests.mark_expired(s, [r.id for r in rows])
    for r in rows:
        r.status = "expired"
        provider.notifier.request_resolved(r.user_id, r.device_request_id, "expired")
        provider.after_decision(r)  # push clients receive expired_token (CIBA §12)
    return len(rows)
