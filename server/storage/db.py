"""Engine and session handling for SQLite (default) and PostgreSQL (by URL), via SQLAlchemy 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import checkpoint, migrate, versions

#: PostgreSQL connections per process, at most (docs/deployment.md: processes x this must stay
#: under the server's max_connections).
POOL_SIZE = 20


class Database:
    """Owns the engine; ``session()`` gives a unit of work that commits on success."""

    def __init__(self, url: str, checkpoint_thread: bool = False) -> None:
        """``checkpoint_thread``: a SQLite file's WAL checkpoints on a thread of each process
        instead of inside a commit (storage/checkpoint.py; for the serving processes)."""
        self.url = url
        kwargs: dict = {"future": True}
        self.checkpointer: checkpoint.Checkpointer | None = None
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                if checkpoint_thread:
                    self.checkpointer = checkpoint.Checkpointer(path, self)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # No overflow: a request beyond the pool waits for a pooled connection instead of
            # opening one that is closed again when returned. Under load that churn was most of
            # what a PostgreSQL request cost (docs/performance.md, round 8: 171 bc-authorize/s
            # with 10 + 20 overflow, 645-679 with 10 or 20 and none).
            kwargs.update(pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=0)
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if self.checkpointer is not None:
                event.listen(self.engine, "connect",
                             partial(checkpoint.on_connect, self.checkpointer))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Per-database helpers of the repositories (e.g. a group commit), made on first use.
        self.extras: dict[str, object] = {}
        versions.install(self._sessions)

    def create_all(self) -> None:
        """Bring the schema to this release's (Alembic, under a lock; see migrate.py)."""
        migrate.upgrade(self.engine)

    def prepare(self, auto_upgrade: bool = True) -> None:
        """At process start: upgrade an older schema, or refuse when ``auto_upgrade`` is off."""
        migrate.prepare(self.engine, auto_upgrade)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        reader = self.extras.pop("version_reader", None)  # versions.py: outside the pool
        if reader is not None:
            reader.close()
        for extra in list(self.extras.values()):  # a group commit's own connection
            close = getattr(extra, "close", None)
            if callable(close):
                close()
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets several provider processes read while one writes; busy_timeout waits for locks.
    # synchronous=NORMAL: in WAL mode a commit survives a killed process (kill -9), only a
    # power loss may undo the last commits; FULL would fsync on every commit.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
