"""Repository for push channels: Gotify accounts, delivery failures, device counts."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Device, GotifyAccount, PushFailure

#: Failures kept for the operator page; older ones are deleted as new ones come.
MAX_FAILURES = 200


# -- Gotify accounts -----------------------------------------------------------------------
def gotify_account(s: Session, user_id: str) -> GotifyAccount | None:
    return s.get(GotifyAccount, user_id)


def claim_gotify_account(s: Session, row: GotifyAccount) -> GotifyAccount:
    """Insert ``row`` unless another process did first; the row that is stored."""
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        existing = s.get(GotifyAccount, row.user_id, populate_existing=True)
        if existing is None:
            raise
        return existing
    return row


def set_gotify_app(s: Session, user_id: str, app_id: int, app_token_sealed: str) -> None:
    row = s.get(GotifyAccount, user_id)
    if row is not None:
        row.app_id, row.app_token_sealed = app_id, app_token_sealed


# -- failures --------------------------------------------------------------------------------
def add_failure(s: Session, failure: PushFailure, keep: int = MAX_FAILURES) -> None:
    s.add(failure)
    s.flush()
    cutoff = s.scalar(select(PushFailure.id).order_by(PushFailure.id.desc()).offset(keep)
                      .limit(1))
    if cutoff is not None:
        s.execute(delete(PushFailure).where(PushFailure.id <= cutoff))


def recent_failures(s: Session, limit: int = 20, channel: str | None = None) -> list[PushFailure]:
    q = select(PushFailure)
    if channel is not None:
        q = q.where(PushFailure.channel == channel)
    return list(s.scalars(q.order_by(PushFailure.id.desc()).limit(limit)))


# -- operator views --------------------------------------------------------------------------
def active_device_counts(s: Session) -> dict[str, int]:
    """user_id -> number of active (unrevoked) devices."""
    rows = s.execute(select(Device.user_id, func.count()).where(Device.revoked_at.is_(None))
                     .group_by(Device.user_id))
    return {user_id: count for user_id, count in rows}
