"""Group commit: the INSERTs of concurrent requests committed together, each caller returning only
once its own row is committed (so an answered request is as durable as with a commit each).

One caller at a time leads: it yields once so that concurrent callers can queue, writes the
queue (up to ``max_batch``) in one transaction, then hands the lead to the next caller waiting,
or gives it up. A commit costs SQLite a WAL write and PostgreSQL an fsync; one of them now serves
a whole batch. If a batch fails (a unique key taken), its rows are written one by one so that
each caller gets its own outcome. Works with OS threads and with gevent's greenlets alike.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy.engine import Engine

from .. import oslocks
from . import prepared



def _pause() -> None:
    """Yield once: to other greenlets under gevent, to other threads otherwise."""
    time.sleep(0)


class _Entry:
    __slots__ = ("args", "done", "lead", "error", "result")

    def __init__(self, args: Any) -> None:
        self.args = args  # an INSERT's parameters, or a unit of work (``Units``)
        self.done = threading.Event()
        self.lead = False
        self.error: BaseException | None = None
        self.result: Any = None


class GroupCommit:
    #: Write a SQLite file's batches on a connection of this group's own (``_OwnConnection``)
    #: instead of one checked out of the pool for each batch.
    OWN_CONNECTION = False

    def __init__(self, engine: Engine, statement: prepared.Prepared | None,
                 max_batch: int = 64) -> None:
        self.engine = engine
        self.statement = statement
        self.max_batch = max_batch
        self.commits = 0  # for tests and benchmarks
        self._lock = oslocks.os_lock()  # never yields inside (server/oslocks.py)
        self._waiting: list[_Entry] = []
        self._leading = False
        self._own: _OwnConnection | None = None
        if self.OWN_CONNECTION and _sqlite_file(engine):
            self._own = _OwnConnection(engine)

    def _transaction(self):
        """A cursor in a transaction, committed when the block ends (rolled back if it
        raises). Only the leader writes, one batch at a time, so one connection serves."""
        if self._own is not None:
            return self._own.transaction()
        return prepared.raw(self.engine, commit=True)

    def close(self) -> None:
        """Close this process's own connection, if any (``Database.dispose``)."""
        if self._own is not None:
            self._own.close()

    def insert(self, params: dict[str, Any]) -> None:
        assert self.statement is not None
        sql, args = self.statement.args(self.engine, params)
        self._submit(sql, _Entry(args))

    def _submit(self, sql: str, entry: _Entry) -> None:
        """Queue ``entry``, lead or wait for its batch; raises its own error, if any."""
        with self._lock:
            self._waiting.append(entry)
            lead = not self._leading
            self._leading = True
        if not lead:
            # No time limit: under gevent a timed wait starts a timer per caller (about 20 µs,
            # 2-3% of a bc-authorize under load, docs/performance.md round 8), and it would not
            # free the queue from a stuck leader anyway. A leader's write is bounded by the
            # database (SQLite's busy timeout), and a leader that ends in any way, killed
            # included, hands the lead on (``_lead``).
            try:
                entry.done.wait()
            except BaseException:  # killed while waiting
                self._abandon(entry)
                raise
        if lead or entry.lead:
            self._lead(sql, entry)
        if entry.error is not None:
            raise entry.error

    def _lead(self, sql: str, own: _Entry) -> None:
        batch: list[_Entry] = []
        try:
            _pause()  # let concurrent callers reach their insert and queue behind us
            with self._lock:
                batch = self._waiting[:self.max_batch]
                del self._waiting[:self.max_batch]
            self._write(sql, batch)
        finally:
            # Also when this caller is killed (a worker timeout) before or while writing: the
            # lead passes on, so the queue never stalls.
            with self._lock:
                if not batch and own in self._waiting:
                    self._waiting.remove(own)
                if self._waiting:
                    successor = self._waiting[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._leading = False
            for entry in batch:
                entry.done.set()

    def _abandon(self, entry: _Entry) -> None:
        """A waiting caller gives up: out of the queue, and the lead passed on if it had it."""
        with self._lock:
            if entry in self._waiting:
                self._waiting.remove(entry)
            if entry.lead:
                entry.lead = False
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].done.set()
                else:
                    self._leading = False

    def _write(self, sql: str, batch: list[_Entry]) -> None:
        try:
            with self._transaction() as cursor:
                results = self._batch(cursor, sql, batch)
            self.commits += 1
            for entry, result in zip(batch, results):
                entry.result = result
            return
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
        for entry in batch:  # one by one: each caller gets its own outcome
            try:
                with self._transaction() as cursor:
                    entry.result = self._one(cursor, sql, entry)
                self.commits += 1
            except Exception as exc:
                entry.error = exc

    def _batch(self, cursor: Any, sql: str, batch: list[_Entry]) -> list[Any]:
        """The whole batch in one transaction (one executemany of the INSERT)."""
        cursor.executemany(sql, [e.args for e in batch])
        return [None] * len(batch)

    def _one(self, cursor: Any, sql: str, entry: _Entry) -> Any:
        cursor.execute(sql, entry.args)


class Units(GroupCommit):
    """Group commit of units of work: each caller's function runs on the batch's cursor, in
    the one transaction of the batch, and the caller gets its own return value once that
    transaction is committed. A unit sees the units before it in its batch (the single-use
    UPDATE of an auth_req_id exchanged twice in one batch matches once). If the batch fails,
    it is rolled back and every unit runs again in its own transaction, so that one failing
    unit fails only its own caller. A unit may run on another caller's greenlet or thread:
    what it needs from its own request's context (the audit address) it must take along."""

    OWN_CONNECTION = True

    def __init__(self, engine: Engine, max_batch: int = 64) -> None:
        super().__init__(engine, None, max_batch)

    def run(self, unit: Callable[[Any], Any]) -> Any:
        """``unit(cursor)``'s result, committed (with concurrent callers' units) on return."""
        entry = _Entry(unit)
        self._submit("", entry)
        return entry.result

    def _batch(self, cursor: Any, sql: str, batch: list[_Entry]) -> list[Any]:
        return [entry.args(cursor) for entry in batch]

    def _one(self, cursor: Any, sql: str, entry: _Entry) -> Any:
        return entry.args(cursor)


def _sqlite_file(engine: Engine) -> bool:
    url = engine.url
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


class _OwnConnection:
    """A SQLite file's write connection of one group commit in this process, outside the pool:
    a pool checkout and return cost about as much as a small batch's statements (round 6 of
    docs/performance.md). Made from the engine (its PRAGMAs: WAL, synchronous, busy timeout,
    the checkpoint backstop), again after a fork (a connection must not cross one) and after a
    failure that left it unusable. PostgreSQL keeps the pool (its pre-ping and reconnects)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Any = None
        self._pid = 0

    def _get(self) -> Any:
        if self._connection is None or self._pid != os.getpid():
            pooled = self.engine.raw_connection()
            self._connection = pooled.driver_connection
            pooled.detach()  # never returned to the pool: this group's own
            self._pid = os.getpid()
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        connection = self._get()
        cursor = connection.cursor()
        try:
            yield cursor
            cursor.close()
            connection.commit()
        except BaseException:
            try:
                cursor.close()
                connection.rollback()
            except Exception:  # unusable (closed, I/O error): a new one next time
                self._connection = None
            raise

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None
