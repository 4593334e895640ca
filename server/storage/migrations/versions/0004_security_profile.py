"""Issue 10 (security profile): the clients' key, certificate and profile columns, tokens.user_id
made nullable (client_credentials tokens have no user, RFC 6749 §4.4), and the durable
notification outbox (CIBA §10.2, §10.3).

- clients.jwks_uri (RFC 7591 §2; issue 11 uses the same column), the RFC 8705 §2.1.2
  tls_client_auth_* subject columns, tls_client_certificate_bound_access_tokens (§3.4),
  backchannel_authentication_request_signing_alg (CIBA §4) and fapi_ciba;
- tokens.user_id NOT NULL -> NULL (SQLite rebuilds the table, rows kept; this replaces the
  pre-Alembic storage/upgrade.relax_not_null of the issue 10 branch);
- notification_outbox with its due index.

Each step is skipped when already done, so a database adopted by 0001 from a build that made
these with create_all upgrades too.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CLIENT_COLUMNS = (
    ("jwks_uri", sa.Text(), {}),
    ("tls_client_auth_subject_dn", sa.Text(), {}),
    ("tls_client_auth_san_dns", sa.Text(), {}),
    ("tls_client_auth_san_uri", sa.Text(), {}),
    ("tls_client_auth_san_ip", sa.Text(), {}),
    ("tls_client_auth_san_email", sa.Text(), {}),
    ("tls_client_certificate_bound_access_tokens", sa.Boolean(),
     {"nullable": False, "server_default": sa.false()}),
    ("backchannel_authentication_request_signing_alg", sa.String(8), {}),
    ("fapi_ciba", sa.Boolean(), {"nullable": False, "server_default": sa.false()}),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("clients")}
    missing = [c for c in CLIENT_COLUMNS if c[0] not in present]
    if missing:
        with op.batch_alter_table("clients") as batch:
            for name, type_, options in missing:
                batch.add_column(sa.Column(name, type_, nullable=options.get("nullable", True),
                                           server_default=options.get("server_default")))

    user_id = {c["name"]: c for c in inspector.get_columns("tokens")}["user_id"]
    if not user_id["nullable"]:
        with op.batch_alter_table("tokens") as batch:
            batch.alter_column("user_id", existing_type=sa.String(64), nullable=True)

    if "notification_outbox" not in inspector.get_table_names():
        op.create_table(
            "notification_outbox",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("request_id", sa.String(64),
                      sa.ForeignKey("ciba_requests.id", ondelete="CASCADE"), nullable=False,
                      unique=True),
            sa.Column("client_id", sa.String(255), nullable=False),
            sa.Column("mode", sa.String(8), nullable=False),
            sa.Column("endpoint", sa.Text(), nullable=False),
            sa.Column("payload_sealed", sa.Text(), nullable=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", sa.Float(), nullable=False),
            sa.Column("deadline", sa.Float(), nullable=False),
            sa.Column("lease_owner", sa.String(64), nullable=True),
            sa.Column("lease_until", sa.Float(), nullable=True),
            sa.Column("last_status", sa.Integer(), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("finished_at", sa.Float(), nullable=True))
        op.create_index("ix_notification_outbox_due", "notification_outbox",
                        ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_due", table_name="notification_outbox")
    op.drop_table("notification_outbox")
    with op.batch_alter_table("tokens") as batch:
        batch.alter_column("user_id", existing_type=sa.String(64), nullable=False)
    with op.batch_alter_table("clients") as batch:
        for name, _, _ in reversed(CLIENT_COLUMNS):
            batch.drop_column(name)
