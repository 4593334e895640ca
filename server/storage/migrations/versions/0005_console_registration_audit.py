"""Issue 11 (operators' console, dynamic client registration, audit log, passkeys):

- clients.self_registered (RFC 7591: the client registered itself; its URLs must stay public)
  and clients.registration_token_hash (RFC 7592 registration access token, SHA-256 digest);
  clients.jwks_uri, which issue 11 also uses, came with 0004;
- audit_events (append-only), initial_access_tokens (RFC 7591 §3), passkeys (WebAuthn).

Each step is skipped when already done, so a database adopted by 0001 from a build that made
these with create_all upgrades too.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("clients")}
    wanted = [sa.Column("self_registered", sa.Boolean(), nullable=False,
                        server_default=sa.false()),
              sa.Column("registration_token_hash", sa.String(64), nullable=True)]
    missing = [c for c in wanted if c.name not in present]
    if missing:
        with op.batch_alter_table("clients") as batch:
            for column in missing:
                batch.add_column(column)

    tables = set(inspector.get_table_names())
    if "audit_events" not in tables:
        op.create_table(
            "audit_events",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("at", sa.Float(), nullable=False),
            sa.Column("event", sa.String(48), nullable=False),
            sa.Column("actor", sa.String(300), nullable=False),
            sa.Column("address", sa.String(64), nullable=True),
            sa.Column("user_id", sa.String(64), nullable=True),
            sa.Column("client_id", sa.String(255), nullable=True),
            sa.Column("detail", sa.Text(), nullable=False))
        for column in ("at", "event", "user_id"):
            op.create_index(f"ix_audit_events_{column}", "audit_events", [column])
    if "initial_access_tokens" not in tables:
        op.create_table(
            "initial_access_tokens",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("label", sa.String(255), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("created_by", sa.String(300), nullable=False),
            sa.Column("expires_at", sa.Float(), nullable=False),
            sa.Column("single_use", sa.Boolean(), nullable=False),
            sa.Column("used_count", sa.Integer(), nullable=False),
            sa.Column("last_used_at", sa.Float(), nullable=True),
            sa.Column("revoked_at", sa.Float(), nullable=True))
    if "passkeys" not in tables:
        op.create_table(
            "passkeys",
            sa.Column("id", sa.String(1400), primary_key=True),
            sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
                      nullable=False),
            sa.Column("public_key", sa.Text(), nullable=False),
            sa.Column("sign_count", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("transports", sa.String(255), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("last_used_at", sa.Float(), nullable=True))
        op.create_index("ix_passkeys_user_id", "passkeys", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_passkeys_user_id", table_name="passkeys")
    op.drop_table("passkeys")
    op.drop_table("initial_access_tokens")
    for column in ("user_id", "event", "at"):
        op.drop_index(f"ix_audit_events_{column}", table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("registration_token_hash")
        batch.drop_column("self_registered")
