"""Completing a CIBA request: the one place every approval path ends (device, console page,
conformance hook), and where expiry is noticed and announced.
"""

from __future__ import annotations

from enum import Enum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .. import audit
from ..storage import audit as audit_repo, ciba_requests, outbox as outbox_repo, prepared, replay
from ..storage.models import CibaRequest
from . import delivery

if TYPE_CHECKING:
    from ..ports import ProviderCore


class Outcome(str, Enum):
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"


def decide(provider: "ProviderCore", request_id: str, approve: bool, decided_by: str,
           delivery_mode: str | None = None) -> Outcome:
    """Approve or deny a pending request exactly once; tells the user's other devices.

    ``delivery_mode``: the request's, when the caller read it (it never changes). Then the
    decision, its audit record and, for a ping or push client, its outbox row are prepared
    statements, grouped with concurrent decisions and exchanges in one commit
    (``ciba_requests.finish_grouped``); without it, one transaction of its own."""
    status = "approved" if approve else "denied"
    now = provider.clock.now()
    if delivery_mode is not None:
        done, req = ciba_requests.finish_grouped(provider.db, request_id, status, decided_by,
                                                 now, _audited(provider, decided_by))
    else:
        done, req = ciba_requests.finish(provider.db, request_id, status, decided_by, now,
                                         _recorded(provider, decided_by))
    if req is None:
        return Outcome.NOT_FOUND
    if not done:
        return _refused(req.status)
    provider.notifier.request_resolved(req.user_id, req.device_request_id, status)
    provider.after_decision(req)
    return Outcome(status)


def cancel(provider: "ProviderCore", request_id: str, cancelled_by: str,
           approved_too: bool = False) -> Outcome:
    """End a pending request that nobody should decide any more (an extension, not CIBA).

    ``cancelled_by`` is "client" when the consumption device gave up, or "operator:<username>".
    The client's later polls get access_denied (CIBA §11 has no "cancelled" error; the request
    will never be approved, which is what access_denied tells), devices withdraw the card, and a
    late device decision is refused as already decided (status "cancelled").

    ``approved_too``: an approved request whose tokens were not fetched yet is cancelled as well,
    so they can never be (the client says it does not want them); devices hear "cancelled".
    """
    done, req = ciba_requests.finish(provider.db, request_id, "cancelled", cancelled_by,
                                     provider.clock.now(), _recorded(provider, cancelled_by),
                                     withdraw_approved=approved_too)
    if req is None:
        return Outcome.NOT_FOUND
    if not done:
        return _refused(req.status)
    provider.notifier.request_resolved(req.user_id, req.device_request_id, "cancelled")
    provider.after_decision(req)
    return Outcome.CANCELLED


def _refused(status: str) -> Outcome:
    """Why a request could not be decided or cancelled: past its expiry, whether or not the
    sweep has marked it yet (status "expired", or still "pending"), or decided before."""
    return Outcome.EXPIRED if status in ("pending", "expired") else Outcome.ALREADY_DECIDED


def _recorded(provider: "ProviderCore",
              actor: str) -> Callable[[Connection, SimpleNamespace], None]:
    """What commits with a decision, in its transaction: the audit record (one prepared INSERT),
    and for ping and push clients the notification (issue 10's outbox), so a crash can lose
    neither."""
    def record(conn: Connection, req: SimpleNamespace) -> None:
        now = req.decided_at
        # A cancelled request with an auth_time was approved first: its client withdrew it.
        withdrawn = req.status == "cancelled" and req.auth_time is not None
        prepared.run(conn, (audit_repo.INSERT, _audit_row(req, actor, withdrawn)))
        if withdrawn:
            # The approval's ping or push (its tokens not made yet) must never go out now.
            outbox_repo.withdraw(conn, req.id)
        if delivery.wanted(req):
            with Session(bind=conn) as s:  # joins the decision's transaction
                delivery.enqueue(provider, s, req, now)
                s.flush()
    return record


def _audited(provider: "ProviderCore", actor: str) -> Callable[[Any, SimpleNamespace], None]:
    """What commits with a grouped decision, on the cursor of its transaction: the audit
    record, and for ping and push clients the notification (the outbox row, as ``_recorded``
    writes it), so a crash can lose neither."""
    engine = provider.db.engine
    address = audit.bound_address()  # the unit may run on another request's greenlet

    def record(cursor: Any, req: SimpleNamespace) -> None:
        row = _audit_row(req, actor, False)
        row["address"] = address
        cursor.execute(*audit_repo.INSERT.args(engine, row))
        delivery.enqueue_on(provider, cursor, req, req.decided_at)
    return record


def _audit_row(req: SimpleNamespace, actor: str, withdrawn: bool) -> dict:
    return audit.values(f"request_{req.status}", actor, req.decided_at, user_id=req.user_id,
                        client_id=req.client_id, request=req.id,
                        **({"approval_withdrawn": True} if withdrawn else {}))


def state_of(req: CibaRequest, now: float) -> str:
    """pending | approved | denied | cancelled | exchanged | expired, with expiry applied."""
    if req.status == "pending" and req.expires_at <= now:
        return "expired"
    return req.status


#: Seconds between sweeps of expired requests (a serving process's loop, oauth/outbox.py).
SWEEP_EVERY = 2.0


def sweep_expired_once_per(provider: "ProviderCore", every: float = SWEEP_EVERY) -> int:
    """``sweep_expired`` by one process per time slot of ``every`` seconds, however many run
    a loop that calls this (each outbox loop, each device housekeeper): a single-use lease key
    in storage per slot, so devices and clients hear of each expiry once. The lease is taken
    only when a read finds work: idle processes write nothing (a pending poll's promise to
    write nothing would otherwise be broken every ``every`` seconds by the lease)."""
    now = provider.clock.now()
    with provider.db.session() as s:
        if not ciba_requests.any_expired_pending(s, now):
            return 0
    slot = int(now // every)
    if not replay.use_once_now(provider.db, f"lease:sweep_expired:{slot}", now + 60 * every,
                               now):
        return 0
    return sweep_expired(provider)


def sweep_expired(provider: "ProviderCore") -> int:
    """Mark pending requests past their expiry, withdraw them from devices, and tell ping and
    push clients (CIBA §12 expired_token, through the outbox)."""
    now = provider.clock.now()
    with provider.db.session() as s:
        rows = ciba_requests.expired_pending(s, now)
        ciba_requests.mark_expired(s, [r.id for r in rows])
        for r in rows:
            r.status = "expired"
            delivery.enqueue(provider, s, r, now)  # push clients receive expired_token (§12)
    for r in rows:
        provider.notifier.request_resolved(r.user_id, r.device_request_id, "expired")
        provider.after_decision(r)  # wakes the outbox
    return len(rows)
