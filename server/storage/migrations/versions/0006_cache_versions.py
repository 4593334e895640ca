"""Issue 9 (hot paths): cache_versions, the counter every write to users, clients or devices
bumps so that each process's caches of them (server/storage/directory.py) are emptied
(server/storage/versions.py), with its one row ('directory', 1).

Skipped when already there, so a database adopted by 0001 from a build that made the table
with create_all upgrades too.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "cache_versions" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "cache_versions",
            sa.Column("name", sa.String(32), primary_key=True),
            sa.Column("version", sa.BigInteger(), nullable=False))
    table = sa.table("cache_versions", sa.column("name", sa.String),
                     sa.column("version", sa.BigInteger))
    row = sa.select(table.c.version).where(table.c.name == "directory")
    if op.get_bind().execute(row).first() is None:
        op.bulk_insert(table, [{"name": "directory", "version": 1}])


def downgrade() -> None:
    op.drop_table("cache_versions")
