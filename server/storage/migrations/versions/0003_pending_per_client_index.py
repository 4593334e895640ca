"""Index on ciba_requests (client_id, status): counting a client's pending requests for the
max_pending_per_client cap (issue 13) without a scan.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("ciba_requests")}
    if "ix_ciba_requests_client_status" not in present:
        op.create_index("ix_ciba_requests_client_status", "ciba_requests",
                        ["client_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_ciba_requests_client_status", table_name="ciba_requests")
