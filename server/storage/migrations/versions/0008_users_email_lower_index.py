"""Index on lower(users.email): a login_hint is a username or an email matched
case-insensitively (users.by_username_or_email, the directory's cache misses), and without it
every such lookup read the whole users table (10,000 users: the bc-authorize answer grew by
about 3 ms; docs/performance.md, round 7).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("users")}
    if "ix_users_email_lower" not in present:
        op.create_index("ix_users_email_lower", "users", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_users_email_lower", table_name="users")
