"""Single-use markers (assertion jtis, device nonces, user codes) shared by all provider
processes; failure counters are in counters.py."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import prepared
from .db import Database
from .group_commit import GroupCommit
from .models import UsedJti

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


_PREPARED_PLAIN = prepared.Prepared(insert(_USED).values(key=bindparam("key"),
                                                         expires_at=bindparam("expires_at")))


def use_once_grouped(db: Database, key: str, expires_at: float, now: float) -> bool:
    """``use_once_now`` for calls that come in crowds (a reconnect storm of devices): the
    INSERTs of concurrent callers are committed together (group_commit.py), each caller
    returning once its own row is committed. A key already there fails its own INSERT (the
    primary key, in every process), and then the expired-marker reuse is tried."""
    group = db.extras.get("replay.insert")
    if group is None:
        group = db.extras.setdefault("replay.insert", GroupCommit(db.engine, _PREPARED_PLAIN))
    dialect = db.engine.dialect
    dbapi = getattr(dialect, "loaded_dbapi", None) or dialect.dbapi
    try:
        group.insert({"key": key, "expires_at": expires_at})
        return True
    except dbapi.IntegrityError:
        pass
    with prepared.raw(db.engine, commit=True) as cursor:
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


def purge(s: Session, now: float) -> None:
    """Forget used jtis past their expiry (rate counters: counters.purge)."""
    s.execute(delete(UsedJti).where(UsedJti.expires_at <= now))
