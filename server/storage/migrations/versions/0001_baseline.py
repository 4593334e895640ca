"""Baseline: the schema of the last release made without Alembic (commit 273fe03).

On an empty database it creates every table. On a database that release (or an older one)
made with ``create_all``, which has tables but no ``alembic_version``, it adopts them: missing
tables are created, missing columns added (they were all nullable or had a server default, such
as ``users.is_admin``), and String columns narrower than here are widened on PostgreSQL
(``devices.totp_secret`` went from 64 to 128 characters), which the old additive upgrade never
did. The tables are frozen here on purpose: later changes are later revisions, not edits.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import (BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData,
                        String, Table, Text)
from sqlalchemy.schema import CreateColumn

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASELINE = MetaData()


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE")


Table("users", BASELINE,
      Column("id", String(64), primary_key=True),
      Column("username", String(255), nullable=False, unique=True),
      Column("email", String(320), unique=True),
      Column("name", String(255), nullable=False),
      Column("password_hash", String(255), nullable=False),
      Column("notification_mode", String(16), nullable=False),
      Column("disabled", Boolean, nullable=False),
      Column("created_at", Float, nullable=False),
      Column("is_admin", Boolean, nullable=False, server_default=sa.false()))
Table("clients", BASELINE,
      Column("client_id", String(255), primary_key=True),
      Column("name", String(255), nullable=False),
      Column("secret_hash", String(255)),
      Column("secret_encrypted", Text),
      Column("auth_method", String(32), nullable=False),
      Column("jwks", Text),
      Column("grant_types", Text, nullable=False),
      Column("scope", Text, nullable=False),
      Column("delivery_mode", String(8), nullable=False),
      Column("notification_endpoint", Text),
      Column("polling_interval", Integer),
      Column("ciba_lifetime", Integer),
      Column("id_token_signed_response_alg", String(8)),
      Column("user_code_required", Boolean, nullable=False),
      Column("created_at", Float, nullable=False))
Table("signing_keys", BASELINE,
      Column("kid", String(64), primary_key=True),
      Column("alg", String(8), nullable=False),
      Column("private_jwk", Text, nullable=False),
      Column("public_jwk", Text, nullable=False),
      Column("created_at", Float, nullable=False),
      Column("active_from", Float, nullable=False),
      Column("retired_at", Float))
Table("ciba_requests", BASELINE,
      Column("id", String(64), primary_key=True),
      Column("auth_req_id_hash", String(64), nullable=False, unique=True),
      Column("device_request_id", String(64), nullable=False, unique=True),
      Column("client_id", String(255), _fk("clients.client_id"), nullable=False),
      Column("user_id", String(64), _fk("users.id"), nullable=False),
      Column("scope", Text, nullable=False),
      Column("acr_values", Text),
      Column("binding_message", Text),
      Column("authorization_details", Text),
      Column("delivery_mode", String(8), nullable=False),
      Column("client_notification_token", Text),
      Column("auth_req_id_sealed", Text),
      Column("created_at", Float, nullable=False),
      Column("expires_at", Float, nullable=False),
      Column("interval", Integer, nullable=False),
      Column("last_poll_at", Float),
      Column("status", String(16), nullable=False),
      Column("decided_at", Float),
      Column("decided_by", String(80)),
      Column("approval_token_hash", String(64), unique=True),
      Column("auth_time", Float),
      Index("ix_ciba_requests_user_status", "user_id", "status"))
Table("tokens", BASELINE,
      Column("id", String(64), primary_key=True),
      Column("grant_id", String(64), nullable=False, index=True),
      Column("client_id", String(255), _fk("clients.client_id"), nullable=False),
      Column("user_id", String(64), _fk("users.id"), nullable=False),
      Column("scope", Text, nullable=False),
      Column("access_jti", String(64), nullable=False, unique=True),
      Column("access_expires_at", Float, nullable=False),
      Column("refresh_token_hash", String(64), unique=True),
      Column("refresh_expires_at", Float),
      Column("revoked", Boolean, nullable=False),
      Column("rotated", Boolean, nullable=False),
      Column("auth_time", Float),
      Column("acr", String(255)),
      Column("created_at", Float, nullable=False))
Table("used_jtis", BASELINE,
      Column("key", String(255), primary_key=True),
      Column("expires_at", Float, nullable=False, index=True))
Table("rate_counters", BASELINE,
      Column("key", String(255), primary_key=True),
      Column("count", Integer, nullable=False),
      Column("window_start", Float, nullable=False),
      Column("locked_until", Float))
Table("devices", BASELINE,
      Column("id", String(64), primary_key=True),
      Column("user_id", String(64), _fk("users.id"), nullable=False, index=True),
      Column("display_name", String(255), nullable=False),
      Column("public_jwk", Text, nullable=False),
      Column("push_channel", String(16), nullable=False),
      Column("totp_secret", String(128), nullable=False),
      Column("created_at", Float, nullable=False),
      Column("last_seen_at", Float),
      Column("revoked_at", Float),
      Column("gotify_client_id", BigInteger),
      Column("gotify_client_token", String(255)))
Table("enrollment_codes", BASELINE,
      Column("code_hash", String(64), primary_key=True),
      Column("user_id", String(64), _fk("users.id"), nullable=False),
      Column("created_at", Float, nullable=False),
      Column("expires_at", Float, nullable=False),
      Column("used_at", Float))
Table("settings", BASELINE,
      Column("key", String(128), primary_key=True),
      Column("value", Text, nullable=False))
Table("gotify_accounts", BASELINE,
      Column("user_id", String(64), _fk("users.id"), primary_key=True),
      Column("gotify_username", String(255), nullable=False),
      Column("password_sealed", Text, nullable=False),
      Column("app_id", BigInteger),
      Column("app_token_sealed", Text),
      Column("created_at", Float, nullable=False))
Table("push_failures", BASELINE,
      Column("id", Integer, primary_key=True, autoincrement=True),
      Column("channel", String(16), nullable=False),
      Column("at", Float, nullable=False, index=True),
      Column("username", String(255)),
      Column("operation", String(64), nullable=False),
      Column("status", Integer),
      Column("description", Text, nullable=False))


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    BASELINE.create_all(bind, tables=[t for t in BASELINE.sorted_tables if t.name not in present])
    for table in BASELINE.sorted_tables:
        if table.name in present:
            _adopt(bind, table)


def _adopt(bind, table: Table) -> None:
    """Bring a table made by an older release to this revision (additive and widening only)."""
    columns = {c["name"]: c for c in sa.inspect(bind).get_columns(table.name)}
    for column in table.columns:
        found = columns.get(column.name)
        if found is None:
            ddl = CreateColumn(column).compile(dialect=bind.dialect)
            op.execute(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
        elif bind.dialect.name == "postgresql" and isinstance(column.type, String) \
                and not isinstance(column.type, Text) and column.type.length \
                and (getattr(found["type"], "length", None) or 0) < column.type.length:
            op.alter_column(table.name, column.name, type_=column.type,
                            existing_type=found["type"])


def downgrade() -> None:
    BASELINE.drop_all(op.get_bind())
