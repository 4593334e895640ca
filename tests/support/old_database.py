"""An older SQLite database for upgrade tests: made by this release, changed back by SQL, and
without ``alembic_version``, so that it counts as made before Alembic (revision 0001 adopts it,
the later revisions add what is missing; server/storage/migrate.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.storage.db import Database


def upgraded_old_sqlite(path: Path, *statements: str) -> Database:
    """Run ``statements`` (drop columns, insert old rows) on a fresh database, forget its
    revision, and open it again as a provider process would: upgraded."""
    db = Database(f"sqlite:///{path}")
    db.create_all()
    db.dispose()
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute("DROP TABLE alembic_version")
    db = Database(f"sqlite:///{path}")
    db.create_all()
    return db
