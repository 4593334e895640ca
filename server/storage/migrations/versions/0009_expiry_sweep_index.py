"""Index on ciba_requests (status, expires_at): the expiry sweep, which each serving process
runs every two seconds, searches the pending requests past their expiry; without it, it read
every request ever made (the table keeps them).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("ciba_requests")}
    if "ix_ciba_requests_status_expires" not in present:
        op.create_index("ix_ciba_requests_status_expires", "ciba_requests",
                        ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ciba_requests_status_expires", table_name="ciba_requests")
