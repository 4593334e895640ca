"""Index on lower(users.email): a login_hint is a username or an email matched
case-insensitively (users.by_username_or_email, the directory's cache misses), and without it
every such lookup read the whole users table (10,000 users: the bc-authorize answer grew by
about 3 ms; docs/performance.md, round 7).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS (SQLite and PostgreSQL): a database adopted by 0001 from a build that made
    # it with create_all has the index already, and SQLAlchemy's SQLite reflection does not
    # list expression indexes, so asking the inspector would not tell.
    op.execute("CREATE INDEX IF NOT EXISTS ix_users_email_lower ON users (lower(email))")


def downgrade() -> None:
    op.drop_index("ix_users_email_lower", table_name="users")
