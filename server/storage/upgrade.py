"""Additive schema upgrades: columns added to a model after a database was created.

``create_all`` makes missing tables but leaves existing ones alone, so an instance created by an
older version lacks newer columns (``users.is_admin``). ``add_missing_columns`` adds each one
that is nullable or has a server default, the only kind of change made without a migration
tool; anything else is left for a real migration and named in the error SQLAlchemy raises.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateColumn

from .models import Base

log = logging.getLogger(__name__)


def add_missing_columns(engine: Engine) -> list[str]:
    """ALTER TABLE ... ADD COLUMN for each additive column missing; returns "table.column"."""
    inspector = inspect(engine)
    existing_tables = set(inspector.get_table_names())
    added: list[str] = []
    for table in Base.metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not (column.nullable or column.server_default is not None):
                continue
            ddl = str(CreateColumn(column).compile(dialect=engine.dialect))
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
            added.append(f"{table.name}.{column.name}")
            log.info("added column %s.%s", table.name, column.name)
    return added
