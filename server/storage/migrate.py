"""Schema migrations with Alembic (server/storage/migrations/versions/).

``prepare(db, auto)`` runs when a process starts: a database at the newest revision costs one
query; an older one is upgraded (``auto``) or refused with a message naming the command. The
upgrade itself (``upgrade(db)``, also ``ciba-provider db upgrade``) holds a lock, so several
processes starting at once (gunicorn workers) migrate once: ``pg_advisory_lock`` on PostgreSQL
(per schema), an ``flock`` on a file beside the database on SQLite.

- an empty database: ``create_all`` from the models, then stamped at the newest revision (the
  Alembic cookbook's way; a test checks that the revisions build the same schema);
- a database made before Alembic (tables, no ``alembic_version``): revision 0001 adopts it;
- otherwise: the revisions after its current one, in order.

Adding a revision (a new table or column in models.py): docs/deployment.md "Database
migrations", or in short ``ciba-provider db revision -m "what changed"`` writes one from the
difference between models.py and a database at the newest revision; read and trim it, then
``python -m pytest tests/server/test_migrations.py``.
"""

from __future__ import annotations

import fcntl
import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from . import versions
from .models import Base

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaOutdated(RuntimeError):
    """The database is older than this release and automatic upgrades are off."""


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision of this release."""
    heads = ScriptDirectory.from_config(config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {heads}; merge them")
    return heads[0]


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def prepare(engine: Engine, auto: bool = True) -> None:
    """Make sure the schema is this release's before the process serves anything."""
    with engine.connect() as conn:
        revision = current(conn)
    if revision == head():
        return
    if not auto:
        raise SchemaOutdated(
            f"the database schema is at revision {revision or 'none'}, this release needs "
            f"{head()}: run `ciba-provider db upgrade` (or unset CIBA_DB_AUTO_UPGRADE=false)")
    upgrade(engine)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; returns (revision before, revision after)."""
    with _locked(engine) as conn:
        before = current(conn)
        if before != head():
            cfg = config(conn)
            ours = {t.name for t in Base.metadata.sorted_tables}
            if before is None and not ours & set(inspect(conn).get_table_names()):
                Base.metadata.create_all(conn)
                command.stamp(cfg, "head")
            else:
                command.upgrade(cfg, "head")
            versions.ensure_row_on(conn)  # 0006 makes it too; create_all + stamp does not
            conn.commit()
            log.info("database schema upgraded from %s to %s", before or "none", head())
        return before, head()


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            key = text("SELECT hashtext('ciba-migrate:' || current_schema())")
            lock_id = conn.execute(key).scalar_one()
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_id})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        with engine.connect() as conn:
            yield conn
        return
    with open(Path(database).with_name(Path(database).name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
