"""Group commit: the INSERTs of concurrent requests committed together, each caller returning only
once its own row is committed (so an answered request is as durable as with a commit each).

One caller at a time leads: it yields once so that concurrent callers can queue, writes the
queue (up to ``max_batch``) in one transaction, then hands the lead to the next caller waiting,
or gives it up. A commit costs SQLite a WAL write and PostgreSQL an fsync; one of them now serves
a whole batch. If a batch fails (a unique key taken), its rows are written one by one so that
each caller gets its own outcome. Works with OS threads and with gevent's greenlets alike.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from sqlalchemy.engine import Engine

from . import prepared

WAIT_LIMIT = 60.0  # seconds a caller waits for its batch before giving up (never seen)


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
    def __init__(self, engine: Engine, statement: prepared.Prepared | None,
                 max_batch: int = 64) -> None:
        self.engine = engine
        self.statement = statement
        self.max_batch = max_batch
        self.commits = 0  # for tests and benchmarks
        self._lock = threading.Lock()
        self._waiting: list[_Entry] = []
        self._leading = False

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
            try:
                finished = entry.done.wait(WAIT_LIMIT)
            except BaseException:  # killed while waiting
                self._abandon(entry)
                raise
            if not finished:
                self._abandon(entry)
                raise TimeoutError("the group commit did not finish")
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
            with prepared.raw(self.engine, commit=True) as cursor:
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
                with prepared.raw(self.engine, commit=True) as cursor:
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
