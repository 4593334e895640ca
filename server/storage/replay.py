"""Single-use markers and failure counters shared by all provider processes."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import prepared
from .db import Database
from .models import RateCounter, UsedJti

_USED = UsedJti.__table__
_INSERT_NEW = {name: dialect.insert(_USED).values(key=bindparam("key"),
                                                  expires_at=bindparam("expires_at"))
               .on_conflict_do_nothing(index_elements=["key"]).returning(_USED.c.key)
               for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_REUSE = update(_USED).where(_USED.c.key == bindparam("k"), _USED.c.expires_at <= bindparam("now")
                             ).values(expires_at=bindparam("exp"))
_PREPARED_NEW = {name: prepared.Prepared(statement) for name, statement in _INSERT_NEW.items()}
_PREPARED_REUSE = prepared.Prepared(_REUSE)


def use_once_now(db: Database, key: str, expires_at: float, now: float) -> bool:
    """``use_once`` in a transaction of its own, by prepared statements (each device call)."""
    insert = _PREPARED_NEW.get(db.engine.dialect.name)
    if insert is None:
        with db.session() as s:
            return use_once(s, key, expires_at, now)
    with prepared.raw(db.engine, commit=True) as cursor:
        cursor.execute(*insert.args(db.engine, {"key": key, "expires_at": expires_at}))
        if cursor.fetchone() is not None:
            return True
        cursor.execute(*_PREPARED_REUSE.args(db.engine, {"k": key, "now": now,
                                                         "exp": expires_at}))
        return cursor.rowcount == 1


def use_once(s: Session, key: str, expires_at: float, now: float) -> bool:
    """Record ``key`` as used; False when it was already used and has not yet expired.

    One statement in the common case (a new key): INSERT ... ON CONFLICT DO NOTHING."""
    conn = s.connection()
    insert = _INSERT_NEW.get(conn.dialect.name)
    if insert is not None:
        if conn.execute(insert, {"key": key, "expires_at": expires_at}).first() is not None:
            return True
        # Taken: reusable only once the earlier use has expired (one winner, atomically).
        return conn.execute(_REUSE, {"k": key, "now": now, "exp": expires_at}).rowcount == 1
    existing = s.get(UsedJti, key)
    if existing is not None:
        if existing.expires_at > now:
            return False
        existing.expires_at = expires_at
        return True
    try:
        with s.begin_nested():
            s.add(UsedJti(key=key, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def purge(s: Session, now: float, longest_window: float) -> None:
    """Forget used jtis past their expiry, and rate counters whose window (the longest any
    limit uses) and lock have both ended: ``counter`` would reset those anyway, so deleting them
    changes no limit, and counters keyed by client address do not pile up for ever."""
    s.execute(delete(UsedJti).where(UsedJti.expires_at <= now))
    s.execute(delete(RateCounter).where(
        RateCounter.window_start + longest_window <= now,
        (RateCounter.locked_until.is_(None)) | (RateCounter.locked_until <= now)))


def counter(s: Session, key: str, now: float, window: float) -> RateCounter:
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
