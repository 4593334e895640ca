"""``ciba-provider db``: the database schema (Alembic; see server/storage/migrate.py).

- ``db upgrade``: bring the database to this release's revision (what every process start does
  unless CIBA_DB_AUTO_UPGRADE=false); safe to run while other processes start.
- ``db current``: the database's revision and this release's.
- ``db revision -m MESSAGE``: for developers: write a new revision from the difference between
  models.py and the newest revision (autogenerate on a scratch SQLite database); review it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .admin import AdminError
from .cli import settings_from
from .storage import migrate
from .storage.db import Database


def register(subparsers, common: argparse.ArgumentParser) -> None:
    db = subparsers.add_parser("db", help="database schema (migrations)").add_subparsers(
        dest="action", required=True)
    db.add_parser("upgrade", parents=[common], help="upgrade the schema to this release's") \
        .set_defaults(func=cmd_upgrade)
    db.add_parser("current", parents=[common], help="show the schema revision") \
        .set_defaults(func=cmd_current)
    revision = db.add_parser("revision", help="write a new migration from models.py (developers)")
    revision.add_argument("-m", "--message", required=True)
    revision.set_defaults(func=cmd_revision)


def _database(args) -> Database:
    return Database(settings_from(args).resolved_database_url)


def cmd_upgrade(args) -> int:
    db = _database(args)
    try:
        before, after = migrate.upgrade(db.engine)
    finally:
        db.dispose()
    if before == after:
        print(f"database schema already at revision {after}")
    else:
        print(f"database schema upgraded from {before or 'none'} to {after}")
    return 0


def cmd_current(args) -> int:
    db = _database(args)
    try:
        with db.engine.connect() as conn:
            revision = migrate.current(conn)
    finally:
        db.dispose()
    print(f"database: {revision or 'none'}; this release: {migrate.head()}")
    return 0 if revision == migrate.head() else 1


def cmd_revision(args) -> int:
    from alembic import command

    number = f"{int(migrate.head()) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        db = Database(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        try:
            with db.engine.connect() as conn:
                command.upgrade(migrate.config(conn), "head")
                conn.commit()
                script = command.revision(migrate.config(conn), message=args.message,
                                          autogenerate=True, rev_id=number)
        finally:
            db.dispose()
    if script is None:
        raise AdminError("no revision written")
    print(f"wrote {script.path}: review it, then run tests/server/test_migrations.py")
    return 0
