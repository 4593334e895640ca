"""Failure counters with a window and a lockout, shared by all provider processes (failed
enrollments, wrong user codes, password guesses)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import RateCounter


def counter(s: Session, key: str, now: float, window: float) -> RateCounter:
    """The counter row ``key``, locked for update; reset once its window (and any lockout) ended."""
    row = s.get(RateCounter, key, with_for_update=True)
    if row is None:
        row = RateCounter(key=key, count=0, window_start=now)
        try:
            with s.begin_nested():
                s.add(row)
        except IntegrityError:
            row = s.get(RateCounter, key, with_for_update=True)
    if row.window_start + window <= now and (row.locked_until is None or row.locked_until <= now):
        row.count, row.window_start, row.locked_until = 0, now, None
    return row


def locked_until(s: Session, key: str) -> float:
    """Until when the counter ``key`` is locked (0 when it is not)."""
    row = s.get(RateCounter, key)
    return float(row.locked_until or 0) if row is not None else 0.0


def reset(s: Session, key: str) -> None:
    s.execute(delete(RateCounter).where(RateCounter.key == key))


def purge(s: Session, now: float, longest_window: float) -> None:
    """Forget counters whose window (the longest any limit uses) and lock have both ended:
    ``counter`` would reset those anyway, so deleting them changes no limit, and counters keyed
    by client address do not pile up for ever."""
    s.execute(delete(RateCounter).where(
        RateCounter.window_start + longest_window <= now,
        (RateCounter.locked_until.is_(None)) | (RateCounter.locked_until <= now)))
