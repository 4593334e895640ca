"""Additive schema upgrades: columns added to a model after a database was created, and
columns that became nullable.

``create_all`` makes missing tables but leaves existing ones alone, so an instance created by an
older version lacks newer columns (``users.is_admin``). ``add_missing_columns`` adds each one
that is nullable or has a server default, the only kind of change made without a migration
tool; anything else is left for a real migration and named in the error SQLAlchemy raises.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

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


#: Columns that became nullable (table, column): ``tokens.user_id`` is NULL for client_credentials.
RELAXED = (("tokens", "user_id"),)


def relax_not_null(engine: Engine) -> list[str]:
    """Drop NOT NULL from the RELAXED columns of a database made by an older version.
    PostgreSQL alters the column; SQLite, which cannot, rebuilds the table (rows kept)."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    relaxed: list[str] = []
    for table_name, column_name in RELAXED:
        if table_name not in tables:
            continue
        columns = {c["name"]: c for c in inspector.get_columns(table_name)}
        if column_name not in columns or columns[column_name]["nullable"]:
            continue
        if engine.dialect.name == "sqlite":
            _rebuild_sqlite(engine, table_name, list(columns),
                            [i["name"] for i in inspector.get_indexes(table_name)])
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f'ALTER TABLE "{table_name}" ALTER COLUMN "{column_name}" DROP NOT NULL')
        relaxed.append(f"{table_name}.{column_name}")
        log.info("column %s.%s may now be NULL", table_name, column_name)
    return relaxed


def _rebuild_sqlite(engine: Engine, table_name: str, old_columns: list[str],
                    indexes: list[str]) -> None:
    """SQLite's documented way to change a column: a new table, the rows copied, in one
    transaction (a script, so the DDL is inside it too), foreign key checks off meanwhile."""
    table = Base.metadata.tables[table_name]
    old = f"{table_name}__before_upgrade"
    keep = ", ".join(f'"{c.name}"' for c in table.columns if c.name in old_columns)
    statements = [f'DROP INDEX IF EXISTS "{name}"' for name in indexes]
    statements += [f'ALTER TABLE "{table_name}" RENAME TO "{old}"',
                   str(CreateTable(table).compile(dialect=engine.dialect)).strip()]
    statements += [str(CreateIndex(index).compile(dialect=engine.dialect))
                   for index in table.indexes]
    statements += [f'INSERT INTO "{table_name}" ({keep}) SELECT {keep} FROM "{old}"',
                   f'DROP TABLE "{old}"']
    script = "PRAGMA foreign_keys=OFF;\nBEGIN IMMEDIATE;\n" + ";\n".join(statements) \
        + ";\nCOMMIT;\nPRAGMA foreign_keys=ON;\n"
    raw = engine.raw_connection()
    try:
        raw.cursor().executescript(script)
    finally:
        raw.close()
