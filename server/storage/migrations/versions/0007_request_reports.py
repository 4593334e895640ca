"""Issue 12 (device app, second round): request_reports, one "I didn't request this" report per
login request (server/devices/reports.py), kept when the request row is purged.

Skipped when already there, so a database adopted by 0001 from a build that made the table
with create_all upgrades too.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "request_reports" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "request_reports",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("binding_message", sa.Text(), nullable=True),
        sa.Column("request_status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False))
    op.create_index("ix_request_reports_user_id", "request_reports", ["user_id"])
    op.create_index("ix_request_reports_created_at", "request_reports", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_request_reports_created_at", table_name="request_reports")
    op.drop_index("ix_request_reports_user_id", table_name="request_reports")
    op.drop_table("request_reports")
