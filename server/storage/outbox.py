"""Repository of the notification outbox: enqueue, claim with a lease, and record outcomes.

Claiming works with several processes: on PostgreSQL the due rows are selected
``FOR UPDATE SKIP LOCKED`` (a row another process is claiming is skipped, not waited for); on
both databases the claim itself is a conditional UPDATE (status pending, due, lease free or
expired), so only one claimant wins a row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import prepared
from .models import Client, NotificationOutbox

_TABLE = NotificationOutbox.__table__
_INSERT = prepared.inserting(_TABLE)
_HAS_ROW = prepared.Prepared(select(_TABLE.c.id).where(_TABLE.c.request_id == bindparam("r")))
_ENDPOINT = prepared.Prepared(select(Client.__table__.c.notification_endpoint).where(
    Client.__table__.c.client_id == bindparam("c")))


def enqueue(s: Session, row: NotificationOutbox) -> bool:
    """Add a delivery unless this request already has one (one delivery per decision)."""
    if s.scalar(select(NotificationOutbox.id).where(
            NotificationOutbox.request_id == row.request_id)) is not None:
        return False
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        return False
    return True


def endpoint_on(cursor: Any, engine: Engine, client_id: str) -> str | None:
    """The client's notification endpoint, read in the caller's transaction (a prepared read
    on the cursor of a grouped decision, ``decisions.decide``)."""
    cursor.execute(*_ENDPOINT.args(engine, {"c": client_id}))
    found = cursor.fetchone()
    return found[0] if found is not None else None


def enqueue_on(cursor: Any, engine: Engine, values: dict[str, Any]) -> bool:
    """``enqueue`` by prepared statements on the cursor of the caller's transaction (a grouped
    decision): the row's columns as ``values`` (the others NULL), unless the request already
    has a delivery (one per decision; the unique request_id stays the last word)."""
    cursor.execute(*_HAS_ROW.args(engine, {"r": values["request_id"]}))
    if cursor.fetchone() is not None:
        return False
    row = dict.fromkeys(_TABLE.columns.keys())
    row.update(values)
    cursor.execute(*_INSERT.args(engine, row))
    return True


def withdraw(conn: Connection, request_id: str) -> int:
    """Drop the request's delivery that has not been made yet (Core, in the caller's
    transaction): its approval was withdrawn (decisions.cancel). A push row whose tokens were
    made is not pending-and-empty: the request is exchanged then, and cannot be withdrawn."""
    table = NotificationOutbox.__table__
    return conn.execute(delete(table).where(table.c.request_id == request_id,
                                            table.c.status == "pending")).rowcount


def _claimable(now: float):
    return (NotificationOutbox.status == "pending", NotificationOutbox.next_attempt_at <= now,
            or_(NotificationOutbox.lease_until.is_(None), NotificationOutbox.lease_until < now))


def claim_due(s: Session, owner: str, now: float, lease: float, limit: int = 20) -> list[str]:
    """Lease up to ``limit`` due deliveries to ``owner``; returns their ids."""
    q = select(NotificationOutbox.id).where(*_claimable(now)) \
        .order_by(NotificationOutbox.next_attempt_at).limit(limit)
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    claimed = []
    for row_id in list(s.scalars(q)):
        result = s.execute(update(NotificationOutbox).where(
            NotificationOutbox.id == row_id, *_claimable(now)).values(
            lease_owner=owner, lease_until=now + lease))
        if result.rowcount == 1:
            claimed.append(row_id)
    return claimed


def get(s: Session, row_id: str) -> NotificationOutbox | None:
    return s.get(NotificationOutbox, row_id)


def held(s: Session, row_id: str, owner: str) -> NotificationOutbox | None:
    """The row if ``owner`` still holds its lease."""
    row = s.get(NotificationOutbox, row_id, with_for_update=True)
    return row if row is not None and row.lease_owner == owner else None


def next_due(s: Session) -> float | None:
    return s.scalar(select(NotificationOutbox.next_attempt_at).where(
        NotificationOutbox.status == "pending").order_by(NotificationOutbox.next_attempt_at)
        .limit(1))


def failed(s: Session, limit: int = 50) -> list[NotificationOutbox]:
    return list(s.scalars(select(NotificationOutbox).where(NotificationOutbox.status == "failed")
                          .order_by(NotificationOutbox.finished_at.desc()).limit(limit)))


def pending_count(s: Session) -> int:
    from sqlalchemy import func

    return s.scalar(select(func.count()).select_from(NotificationOutbox).where(
        NotificationOutbox.status == "pending")) or 0
