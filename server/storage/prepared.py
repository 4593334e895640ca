"""Prepared statements for the few hottest queries: a Core statement compiled once per dialect to
the driver's SQL and run on a pooled DBAPI connection, without SQLAlchemy's per-execution work
(cache-key lookup, parameter processing, result metadata). Only for statements whose parameters
are plain strings and numbers; everything else goes through the Session or Core as usual.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ClauseElement


class Prepared:
    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, list[str], bool, dict]] = {}

    def _for(self, engine: Engine) -> tuple[str, list[str], bool, dict]:
        name = engine.dialect.name
        found = self._compiled.get(name)
        if found is None:
            compiled = self.statement.compile(dialect=engine.dialect)
            positional = bool(compiled.positiontup)
            order = list(compiled.positiontup or compiled.params)
            # Literal values in the statement (status == "pending") become bound defaults.
            defaults = {k: v for k, v in compiled.params.items() if v is not None}
            found = self._compiled[name] = (str(compiled), order, positional, defaults)
        return found

    def args(self, engine: Engine, params: dict[str, Any]) -> tuple[str, Sequence | dict]:
        sql, order, positional, defaults = self._for(engine)
        if defaults:
            params = {**defaults, **params}
        if positional:
            return sql, tuple(params[k] for k in order)
        return sql, {k: params[k] for k in order}


def inserting(table: Table, skip: tuple[str, ...] = ()) -> Prepared:
    """An INSERT of one row of ``table`` with every column (but ``skip``) bound by its name:
    callers pass whole rows, defaults included."""
    return Prepared(insert(table).values({c.key: bindparam(c.key) for c in table.columns
                                          if c.key not in skip}))


def run(connection: Connection, *steps: tuple[Prepared, dict[str, Any]]) -> list[int]:
    """Run prepared statements on the DBAPI connection under ``connection`` (so in its
    transaction, beside the Core or ORM statements run there); their row counts."""
    cursor = connection.connection.cursor()
    try:
        counts = []
        for statement, params in steps:
            cursor.execute(*statement.args(connection.engine, params))
            counts.append(cursor.rowcount)
        return counts
    finally:
        cursor.close()


@contextmanager
def raw(engine: Engine, commit: bool = False) -> Iterator[Any]:
    """A cursor on a pooled DBAPI connection; commits (or rolls back) before it goes back.

    A read (``commit=False``) on PostgreSQL runs in autocommit mode: no BEGIN and ROLLBACK
    round trips around a single SELECT (SQLite's driver starts no transaction for a read)."""
    connection = engine.raw_connection()
    driver = connection.driver_connection
    autocommit = not commit and engine.dialect.name == "postgresql"
    try:
        if autocommit:
            driver.autocommit = True
        cursor = connection.cursor()
        try:
            yield cursor
            if commit:
                connection.commit()
        except BaseException:
            if not autocommit:
                connection.rollback()
            raise
        finally:
            cursor.close()
        if not commit and not autocommit:
            connection.rollback()  # end a driver-started read transaction
    finally:
        if autocommit:
            driver.autocommit = False
        connection.close()
