"""Alembic environment: runs on the connection server/storage/migrate.py hands over (under its
lock), or on CIBA_DATABASE_URL / the instance's SQLite file when the ``alembic`` command is used
with alembic.ini (``alembic revision --autogenerate -m ...``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from server.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from server.config import Settings

    engine = create_engine(Settings.from_env().resolved_database_url)
    with engine.connect() as conn:
        run(conn)
