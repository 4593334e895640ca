"""Audit log repository: insert and read only (the log is append-only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import prepared
from .models import AuditEvent, User

#: One audit row by a prepared statement (the hot paths: decisions, token issuance), in the
#: caller's transaction; its id comes from the database.
INSERT = prepared.inserting(AuditEvent.__table__, skip=("id",))


@dataclass
class AuditFilter:
    """What the operator page and ``audit export`` narrow the log by (all optional)."""

    event: str | None = None
    actor: str | None = None  # substring of the actor
    user_id: str | None = None
    client_id: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None  # paging: only events older than this one


def add(s: Session, row: AuditEvent) -> None:
    s.add(row)


def _query(f: AuditFilter):
    q = select(AuditEvent)
    if f.event:
        q = q.where(AuditEvent.event == f.event)
    if f.actor:
        q = q.where(AuditEvent.actor.contains(f.actor, autoescape=True))
    if f.user_id:
        q = q.where(AuditEvent.user_id == f.user_id)
    if f.client_id:
        q = q.where(AuditEvent.client_id == f.client_id)
    if f.since is not None:
        q = q.where(AuditEvent.at >= f.since)
    if f.until is not None:
        q = q.where(AuditEvent.at < f.until)
    if f.before_id is not None:
        q = q.where(AuditEvent.id < f.before_id)
    return q


def newest(s: Session, f: AuditFilter, limit: int = 100) -> list[AuditEvent]:
    return list(s.scalars(_query(f).order_by(AuditEvent.id.desc()).limit(limit)))


def oldest_first(s: Session, f: AuditFilter, batch: int = 500) -> Iterator[AuditEvent]:
    """Every matching event in the order they happened, read in batches (for export)."""
    last = 0
    while True:
        rows = list(s.scalars(_query(f).where(AuditEvent.id > last)
                              .order_by(AuditEvent.id).limit(batch)))
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].id


def usernames(s: Session, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = s.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {user_id: username for user_id, username in rows}
