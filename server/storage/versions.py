"""The directory version: one counter in the database that every write to users, clients or
devices bumps in its own transaction, so that every process (gunicorn workers, other hosts, the
CLI) can keep caches of those rows and drop them as soon as anything changed.

Writes are caught here, in the storage layer, by SQLAlchemy session events: a flush with a new,
changed or deleted User, Client or Device, and an ORM-enabled INSERT/UPDATE/DELETE statement on
their tables, bump the counter in the same transaction. Callers need do nothing; a statement
that changes nothing cached (a device's last_seen_at) says so with the execution option
``directory_neutral=True``.

Readers call ``current(db)``: one indexed read of one row. Inside a request scope
(``request_scope()``, opened by the web layer for each HTTP request) the value read first is
reused for the rest of the request, so a request sees one consistent directory.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Protocol

from sqlalchemy import event, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .. import oslocks
from . import prepared
from .models import CacheVersion, Client, Device, User

NAME = "directory"
CACHED = (User, Client, Device)
CACHED_TABLES = frozenset(m.__tablename__ for m in CACHED)
#: Columns whose change no cache depends on.
NEUTRAL_COLUMNS = {Device: {"last_seen_at"}}

_scoped: ContextVar[dict | None] = ContextVar("ciba_directory_scope", default=None)

_BUMP = update(CacheVersion).where(CacheVersion.name == NAME).values(
    version=CacheVersion.version + 1)
_READ = select(CacheVersion.version).where(CacheVersion.name == NAME)
_READ_SQL = f"SELECT version FROM cache_versions WHERE name = '{NAME}'"


class VersionedDatabase(Protocol):
    """What the version reads use of a ``db.Database`` (which installs this module's events, so
    this module names it by protocol, not by import): its engine, and ``extras`` to keep this
    process's SQLite reader in."""

    @property
    def engine(self) -> Engine: ...

    @property
    def extras(self) -> dict[str, object]: ...


def ensure_row(db: VersionedDatabase) -> None:
    try:
        with db.engine.begin() as conn:
            ensure_row_on(conn)
    except IntegrityError:  # another process made it first
        pass


def ensure_row_on(connection: Connection) -> None:
    """Make the version row in the caller's transaction (a schema made or upgraded)."""
    if connection.execute(_READ).first() is None:
        connection.execute(insert(CacheVersion).values(name=NAME, version=1))


def current(db: VersionedDatabase, fresh: bool = False) -> int:
    """The directory version, read once per request scope (or on every call outside one);
    ``fresh`` reads it again (a long-lived request, such as a WebSocket, that must see a change
    made since it began)."""
    scope = _scoped.get()
    if scope is not None and db in scope and not fresh:
        return scope[db]
    value = _read(db)
    if scope is not None:
        scope[db] = value
    return value


def _read(db: VersionedDatabase) -> int:
    reader = sqlite_reader(db)
    if reader is not None:
        return reader.read()
    # The raw DBAPI connection from the pool: this runs on every request, and one prepared
    # one-row read is all it needs.
    with prepared.raw(db.engine) as cursor:
        cursor.execute(_READ_SQL)
        row = cursor.fetchone()
    return row[0] if row else 0


#: This process's id, kept by a fork hook: asked on every hot read, ``os.getpid()`` was a
#: syscall each time (1.3% of a bc-authorize's samples under load).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class _SqliteReader:
    """A SQLite file's version read on one connection of this process's own, outside the pool:
    a pool checkout and return cost seven times the read itself (87 against 12 µs here). The
    connection holds no transaction between reads (a SELECT starts none in Python's driver), so
    every read sees the last commit of any process, as a pooled one does."""

    def __init__(self, db: VersionedDatabase) -> None:
        pooled = db.engine.raw_connection()  # with the engine's PRAGMAs (WAL, busy timeout)
        self.connection = pooled.driver_connection
        pooled.detach()  # never returned to the pool: this process's own
        self.lock = oslocks.os_lock()  # threads (granian, serve); greenlets never switch inside
        self.pid = _pid

    def read(self) -> int:
        with self.lock:
            row = self.connection.execute(_READ_SQL).fetchone()
        return row[0] if row else 0

    def fetchall(self, sql: str, params) -> list:
        """Another hot read (a token poll's request) on the same connection, for the same
        reason; it too sees the last commit of any process."""
        with self.lock:
            return self.connection.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            self.connection.close()


class _SqliteReaders:
    """This process's readers: one per OS thread (granian's and ``serve``'s threads), so that
    threads do not wait for each other's reads behind one connection's lock (a third of a
    granian process's samples under polls, docs/performance.md round 10); under gevent one for
    every greenlet (they never switch inside a read). A thread's reader goes, and its
    connection closes, when the thread ends (``threading.local``); ``close`` closes them all."""

    def __init__(self, db: VersionedDatabase) -> None:
        self.db = db
        self.pid = _pid
        self._all: weakref.WeakSet[_SqliteReader] = weakref.WeakSet()
        self._closed = False
        self._one = self._new() if oslocks.gevent_patched() else None
        self._local = threading.local()

    def _new(self) -> _SqliteReader:
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        reader = _SqliteReader(self.db)
        self._all.add(reader)
        return reader

    def mine(self) -> _SqliteReader:
        if self._one is not None:
            return self._one
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self._new()
        return reader

    def read(self) -> int:
        return self.mine().read()

    def fetchall(self, sql: str, params) -> list:
        return self.mine().fetchall(sql, params)

    def close(self) -> None:
        self._closed = True
        for reader in list(self._all):
            reader.close()


def sqlite_reader(db: VersionedDatabase) -> _SqliteReaders | None:
    """The version readers of a SQLite file database, made on first use in each process (a
    connection must not cross a fork); None for other databases (a pooled read)."""
    reader = db.extras.get("version_reader")
    if reader is not None and reader.pid == _pid:
        return reader
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    reader = db.extras["version_reader"] = _SqliteReaders(db)
    return reader


def read_rows(db: VersionedDatabase, statement: prepared.Prepared, params: dict) -> list:
    """The rows of a prepared SELECT on a hot path: on a SQLite file on this process's own read
    connection (``sqlite_reader``), else on a pooled DBAPI cursor (no ORM session)."""
    reader = sqlite_reader(db)
    if reader is not None:
        return reader.fetchall(*statement.args(db.engine, params))
    with prepared.raw(db.engine) as cursor:
        cursor.execute(*statement.args(db.engine, params))
        return cursor.fetchall()


@contextmanager
def request_scope() -> Iterator[None]:
    token = _scoped.set({})
    try:
        yield
    finally:
        _scoped.reset(token)


def begin_request() -> object:
    """For frameworks with separate before/after hooks: ``end_request(begin_request())``."""
    return _scoped.set({})


def end_request(token) -> None:
    try:
        _scoped.reset(token)
    except (ValueError, RuntimeError):  # reset from another context: just clear it
        _scoped.set(None)


def install(sessions: sessionmaker) -> None:
    """Bump the version on every write to a cached table through these sessions."""
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "do_orm_execute", _on_execute)


def _changes_cached(session: Session) -> bool:
    for obj in session.new | session.deleted:
        if isinstance(obj, CACHED):
            return True
    for obj in session.dirty:
        if not isinstance(obj, CACHED) or not session.is_modified(obj):
            continue
        neutral = NEUTRAL_COLUMNS.get(type(obj), set())
        state = obj.__dict__.get("_sa_instance_state")
        changed = {a.key for a in state.attrs if a.history.has_changes()} if state else {""}
        if changed - neutral:
            return True
    return False


def _bump(connection) -> None:
    if connection.execute(_BUMP).rowcount == 0:  # a database made without ensure_row
        connection.execute(insert(CacheVersion).values(name=NAME, version=2))


def _before_flush(session: Session, _context, _instances) -> None:
    if _changes_cached(session):
        _bump(session.connection())


def _on_execute(state) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    if state.execution_options.get("directory_neutral"):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and getattr(table, "name", None) in CACHED_TABLES:
        _bump(state.session.connection())
