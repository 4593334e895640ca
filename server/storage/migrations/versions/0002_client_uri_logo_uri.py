"""clients.client_uri and clients.logo_uri (RFC 7591 §2), added on main after release 273fe03.

A database made by that later main with the old additive upgrade already has them: each column
is added only when missing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("clients")}
    with op.batch_alter_table("clients") as batch:
        for name in ("client_uri", "logo_uri"):
            if name not in present:
                batch.add_column(sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("logo_uri")
        batch.drop_column("client_uri")
