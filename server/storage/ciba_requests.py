"""Repository of CIBA requests (CIBA §7) and their decisions."""

from __future__ import annotations

import secrets
from types import SimpleNamespace
from typing import Any, Callable

from sqlalchemy import bindparam, delete, func, insert as sql_insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from . import prepared, versions
from ..security import time_stamp
from .db import Database
from .group_commit import GroupCommit, Units
from .models import CibaRequest

_TABLE = CibaRequest.__table__
_INSERT_PREPARED = prepared.Prepared(sql_insert(_TABLE).values(
    {c.key: bindparam(c.key) for c in _TABLE.columns}))
_COLUMNS = [c.key for c in _TABLE.columns]
_BY_HASH = prepared.Prepared(select(*_TABLE.columns).where(
    _TABLE.c.auth_req_id_hash == bindparam("h")))
_BY_DEVICE_REQUEST_ID = prepared.Prepared(select(*_TABLE.columns).where(
    _TABLE.c.device_request_id == bindparam("d")))
_PENDING = prepared.Prepared(select(*_TABLE.columns).where(
    _TABLE.c.user_id == bindparam("u"), _TABLE.c.status == "pending",
    _TABLE.c.expires_at > bindparam("now")).order_by(_TABLE.c.created_at.desc()))




def _pending_count(*where) -> prepared.Prepared:
    return prepared.Prepared(select(func.count(), func.min(_TABLE.c.expires_at)).where(
        _TABLE.c.status == "pending", _TABLE.c.expires_at > bindparam("now"), *where))


_COUNT = {"user": _pending_count(_TABLE.c.user_id == bindparam("v")),
          "client": _pending_count(_TABLE.c.client_id == bindparam("v")),
          None: _pending_count()}


def add(s: Session, req: CibaRequest) -> CibaRequest:
    s.add(req)
    s.flush()
    return req


def new_row_id() -> str:
    """A request's primary key (32 hex digits, as uuid4().hex was): the time in ns, then 64
    random bits. The key's index then grows at its right edge, so an INSERT dirties the last
    leaf page (shared by the batch) instead of a random page of an ever larger index: SQLite
    writes every dirty page whole into the WAL at commit (docs/performance.md, round 4). The
    key grants nothing (the auth_req_id, the device's request id and the approval link are
    random and stored hashed); its time is the row's created_at anyway."""
    return time_stamp() + secrets.token_hex(8)


def insert(db: Database, **values) -> SimpleNamespace:
    """Store a new request (the hot path of bc-authorize: one prepared INSERT, committed
    together with those of concurrent requests); returns it as a read-only row."""
    row = dict.fromkeys(_COLUMNS)  # every column, None where not given
    row.update(values)
    group = db.extras.get("ciba_requests.insert")
    if group is None:
        group = db.extras.setdefault("ciba_requests.insert",
                                     GroupCommit(db.engine, _INSERT_PREPARED))
    group.insert(row)  # committed (with concurrent requests' rows) when this returns
    return SimpleNamespace(**row)


def find_by_hash(db: Database, auth_req_id_hash: str) -> SimpleNamespace | None:
    """The request for a token poll, read-only: one indexed read, no lock, no write."""
    rows = _fetch(db, _BY_HASH, {"h": auth_req_id_hash})
    return rows[0] if rows else None


def find_by_device_request_id(db: Database, device_request_id: str) -> SimpleNamespace | None:
    """The request a device names (its request_id), read-only: one indexed read, no session."""
    rows = _fetch(db, _BY_DEVICE_REQUEST_ID, {"d": device_request_id})
    return rows[0] if rows else None


def _fetch(db: Database, statement: prepared.Prepared, params: dict) -> list[SimpleNamespace]:
    """Whole rows of a prepared SELECT, as read-only objects with the column names. On a SQLite
    file, on the process's own read connection (storage/versions.py), not a pooled one."""
    return [SimpleNamespace(**dict(zip(_COLUMNS, row)))
            for row in versions.read_rows(db, statement, params)]


def by_auth_req_id_hash(s: Session, auth_req_id_hash: str, *, lock: bool = False) -> CibaRequest | None:
    q = select(CibaRequest).where(CibaRequest.auth_req_id_hash == auth_req_id_hash)
    if lock:
        q = q.with_for_update()
    return s.scalar(q)


def by_device_request_id(s: Session, device_request_id: str) -> CibaRequest | None:
    return s.scalar(select(CibaRequest).where(CibaRequest.device_request_id == device_request_id))


def by_approval_token_hash(s: Session, token_hash: str) -> CibaRequest | None:
    return s.scalar(select(CibaRequest).where(CibaRequest.approval_token_hash == token_hash))


def get(s: Session, request_id: str) -> CibaRequest | None:
    return s.get(CibaRequest, request_id)


def pending_for_user(db: Database, user_id: str, now: float) -> list[SimpleNamespace]:
    """The user's pending requests, newest first, as read-only rows (each device connect)."""
    return _fetch(db, _PENDING, {"u": user_id, "now": now})


def pending_count(db: Database, now: float, *, user_id: str | None = None,
                  client_id: str | None = None) -> tuple[int, float | None]:
    """(number of pending unexpired requests of a user, a client, or all, the soonest expiry):
    one prepared read on an index (twice in each bc-authorize, for the pending caps)."""
    kind, value = (("user", user_id) if user_id is not None else
                   ("client", client_id) if client_id is not None else (None, None))
    params = {"now": now} if kind is None else {"v": value, "now": now}
    with prepared.raw(db.engine) as cursor:
        cursor.execute(*_COUNT[kind].args(db.engine, params))
        count, soonest = cursor.fetchone()
    return int(count), soonest


def decide(s: Session, request_id: str, status: str, decided_by: str, now: float) -> bool:
    """Atomically move a pending, unexpired request to approved/denied/cancelled; False if
    too late."""
    # A table-level statement: no ORM session synchronisation (callers refresh what they hold).
    return s.connection().execute(_DECIDE, _decision(request_id, status, decided_by, now)
                                  ).rowcount == 1


# The statements of a decision and an exchange, built once with their parameters bound per call:
# building them per call cost more than running them (expression construction, cache key).
_DECIDE = update(_TABLE).where(
    _TABLE.c.id == bindparam("rid"), _TABLE.c.status == "pending",
    _TABLE.c.expires_at > bindparam("now")).values(
    status=bindparam("to_status"), decided_by=bindparam("by"), decided_at=bindparam("now"),
    auth_time=bindparam("at"))
_READ_ROW = select(*_TABLE.columns).where(_TABLE.c.id == bindparam("rid"))
_EXCHANGE = update(_TABLE).where(_TABLE.c.id == bindparam("rid"),
                                 _TABLE.c.status == "approved").values(status="exchanged")
_DECIDE_PREPARED = prepared.Prepared(_DECIDE)
_READ_ROW_PREPARED = prepared.Prepared(_READ_ROW)


def _decision(request_id: str, status: str, decided_by: str, now: float) -> dict:
    return {"rid": request_id, "to_status": status, "by": decided_by, "now": now,
            "at": now if status == "approved" else None}


def _withdrawal(request_id: str, decided_by: str, now: float):
    """An approved request whose tokens nobody has fetched becomes cancelled (its client
    withdrew it). auth_time stays: the record still shows that the user approved."""
    return update(_TABLE).where(
        _TABLE.c.id == request_id, _TABLE.c.status == "approved",
        _TABLE.c.expires_at > now).values(status="cancelled", decided_by=decided_by,
                                          decided_at=now)


def finish(db: Database, request_id: str, status: str, decided_by: str, now: float,
           then: Callable[[Connection, SimpleNamespace], None] | None = None,
           withdraw_approved: bool = False) -> tuple[bool, SimpleNamespace | None]:
    """``decide`` in its own short Core transaction, and the request as it is afterwards
    (read-only): (True, row) when this call decided it, (False, row or None) when it was too
    late. ``then(connection, row)`` runs in the same transaction when this call decided it, for
    what must commit with the decision (its audit record, its notification).

    ``withdraw_approved`` (status "cancelled" only): an approved request whose tokens were not
    fetched yet is cancelled too; the token exchange (``mark_exchanged``) and this UPDATE both
    require status approved, so exactly one of them wins."""
    engine = db.engine
    with engine.begin() as conn:
        # The decision and its read-back by prepared statements on the DBAPI connection (in
        # this transaction): SQLAlchemy's per-execution work cost more than the statements.
        cursor = conn.connection.cursor()
        try:
            done = _decide_on(cursor, engine, request_id, status, decided_by, now)
            if not done and withdraw_approved and status == "cancelled":
                done = conn.execute(_withdrawal(request_id, decided_by, now)).rowcount == 1
            row = _read_back(cursor, engine, request_id)
        finally:
            cursor.close()
        if done and then is not None:
            then(conn, row)
    return done, row


def finish_grouped(db: Database, request_id: str, status: str, decided_by: str, now: float,
                   then: Callable[[Any, SimpleNamespace], None]) -> tuple[bool, SimpleNamespace | None]:
    """``finish`` for a decision whose transaction holds only prepared statements (an approval
    or denial: the decision, its audit record and a ping or push client's outbox row,
    ``then(cursor, row)``), committed together with concurrent decisions and exchanges
    (``group_commit.Units``): returns once that commit is done. Of two decisions of one
    request in one batch, the later one's conditional UPDATE matches nothing: it gets
    (False, row) and writes nothing."""
    engine = db.engine

    def unit(cursor) -> tuple[bool, SimpleNamespace | None]:
        done = _decide_on(cursor, engine, request_id, status, decided_by, now)
        row = _read_back(cursor, engine, request_id)
        if done:
            then(cursor, row)
        return done, row

    return _units(db).run(unit)


def _decide_on(cursor, engine, request_id: str, status: str, decided_by: str, now: float) -> bool:
    cursor.execute(*_DECIDE_PREPARED.args(engine, _decision(request_id, status, decided_by, now)))
    return cursor.rowcount == 1


def _read_back(cursor, engine, request_id: str) -> SimpleNamespace | None:
    cursor.execute(*_READ_ROW_PREPARED.args(engine, {"rid": request_id}))
    found = cursor.fetchone()
    return SimpleNamespace(**dict(zip(_COLUMNS, found))) if found is not None else None


#: The ``db.extras`` key of the process's group commit of decisions and exchanges.
UNITS = "ciba_requests.units"


def _units(db: Database) -> Units:
    """The process's group commit of units of work (one per database): decisions and token
    exchanges share it, so concurrent ones of both kinds commit together."""
    group = db.extras.get(UNITS)
    if group is None:
        group = db.extras.setdefault(UNITS, Units(db.engine))
    return group  # type: ignore[return-value]


def mark_exchanged(s: Session, request_id: str) -> bool:
    """Single use of an approved auth_req_id (CIBA §11): only one caller wins."""
    return s.connection().execute(_EXCHANGE, {"rid": request_id}).rowcount == 1


_EXCHANGE_PREPARED = prepared.Prepared(_EXCHANGE)


def exchange(db: Database, request_id: str,
             *then: tuple[prepared.Prepared, dict]) -> bool:
    """``mark_exchanged`` and the INSERTs ``then`` (the token record, its audit record) in one
    short transaction of prepared statements (the token endpoint's hot path), committed
    together with concurrent exchanges (``group_commit.Units``): True only once that commit is
    done. False, with nothing written, when another caller used the request first: the
    conditional UPDATE (status approved) lets exactly one win, within a batch (the later
    unit's UPDATE matches no row), on SQLite (one writer at a time) and on PostgreSQL (the
    loser waits for the row lock, then finds the status changed)."""
    engine = db.engine

    def unit(cursor) -> bool:
        cursor.execute(*_EXCHANGE_PREPARED.args(engine, {"rid": request_id}))
        if cursor.rowcount != 1:
            return False
        for statement, params in then:
            cursor.execute(*statement.args(engine, params))
        return True

    return bool(_units(db).run(unit))


def any_expired_pending(s: Session, now: float) -> bool:
    """Whether a sweep has work: a read by ``ix_ciba_requests_status_expires``, so the sweep
    loops of idle processes neither write nor scan the table."""
    return s.scalar(select(CibaRequest.id).where(
        CibaRequest.status == "pending", CibaRequest.expires_at <= now).limit(1)) is not None


#: Every status a request can have: a search over all of them by expiry uses
#: ix_ciba_requests_status_expires (one range per status) instead of reading the table.
STATUSES = ("pending", "approved", "denied", "exchanged", "expired", "cancelled")


def ended_before(s: Session, before: float, limit: int) -> list[str]:
    """Up to ``limit`` ids of requests whose expiry is before ``before`` (the retention purge)."""
    return list(s.scalars(select(CibaRequest.id).where(
        CibaRequest.status.in_(STATUSES), CibaRequest.expires_at < before).limit(limit)))


def delete_ids(s: Session, request_ids: list[str]) -> None:
    """Delete these requests; their outbox rows go with them (ON DELETE CASCADE)."""
    if request_ids:
        s.execute(delete(CibaRequest).where(CibaRequest.id.in_(request_ids)))


def expired_pending(s: Session, now: float, limit: int = 500) -> list[CibaRequest]:
    return list(s.scalars(select(CibaRequest).where(
        CibaRequest.status == "pending", CibaRequest.expires_at <= now).limit(limit)))


def mark_expired(s: Session, request_ids: list[str]) -> None:
    if request_ids:
        s.execute(update(CibaRequest).where(CibaRequest.id.in_(request_ids),
                                            CibaRequest.status == "pending")
                  .values(status="expired"))
