"""Table definitions. Secrets are stored hashed (or encrypted where a protocol needs the value)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    # console | websocket | gotify; empty means "websocket when a device is enrolled, else console".
    notification_mode: Mapped[str] = mapped_column(String(16), default="")
    # A disabled user cannot be authenticated: bc-authorize answers access_denied (CIBA §13).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    # May open the operator page (/admin); set with `ciba-provider users add --admin|set-admin`.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Client(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    # RFC 7591 §2 client_uri and logo_uri: shown to the user beside the client's name.
    client_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    logo_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Only for client_secret_jwt, which needs the shared secret itself to verify HMACs.
    secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    auth_method: Mapped[str] = mapped_column(String(32))
    jwks: Mapped[str | None] = mapped_column(Text, nullable=True)
    grant_types: Mapped[str] = mapped_column(Text)  # space-separated
    scope: Mapped[str] = mapped_column(Text)  # space-separated allowed scopes
    delivery_mode: Mapped[str] = mapped_column(String(8), default="poll")
    notification_endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    polling_interval: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ciba_lifetime: Mapped[int | None] = mapped_column(Integer, nullable=True)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(8), nullable=True)
    user_code_required: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8))
    private_jwk: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    # A new key is published first and signs only from this time on (clients refresh JWKS).
    active_from: Mapped[float] = mapped_column(Float)
    retired_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CibaRequest(Base):
    """One backchannel authentication request (CIBA §7) and its outcome."""

    __tablename__ = "ciba_requests"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    auth_req_id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The id a device sees: never the client's auth_req_id.
    device_request_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    acr_values: Mapped[str | None] = mapped_column(Text, nullable=True)
    binding_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    authorization_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivery_mode: Mapped[str] = mapped_column(String(8), default="poll")
    client_notification_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Ping and push callbacks must name the auth_req_id (CIBA §10.2, §10.3): kept encrypted.
    auth_req_id_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    interval: Mapped[int] = mapped_column(Integer)
    last_poll_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # pending | approved | denied | exchanged
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    approval_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    auth_time: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_ciba_requests_user_status", "user_id", "status"),)


class Token(Base):
    """Tokens issued for one grant; revoking the grant revokes all of them."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    access_jti: Mapped[str] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[float] = mapped_column(Float)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    refresh_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # The refresh token was rotated: presenting it again means theft, so the grant is revoked.
    rotated: Mapped[bool] = mapped_column(Boolean, default=False)
    auth_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    acr: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class UsedJti(Base):
    """Single-use identifiers (client assertions, device JWS, user codes) until they expire."""

    __tablename__ = "used_jtis"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class RateCounter(Base):
    """Failure counters for rate limits and lockouts, shared by all provider processes."""

    __tablename__ = "rate_counters"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    public_jwk: Mapped[str] = mapped_column(Text)
    push_channel: Mapped[str] = mapped_column(String(16), default="websocket")
    totp_secret: Mapped[str] = mapped_column(String(128))  # sealed with SecretBox
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    gotify_client_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gotify_client_token: Mapped[str | None] = mapped_column(String(255), nullable=True)


class EnrollmentCode(Base):
    __tablename__ = "enrollment_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Setting(Base):
    """Small key/value state shared by processes (e.g. the Gotify app token)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class GotifyAccount(Base):
    """The Gotify user and application the provider manages for one provider user."""

    __tablename__ = "gotify_accounts"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    gotify_username: Mapped[str] = mapped_column(String(255))
    password_sealed: Mapped[str] = mapped_column(Text)  # sealed with SecretBox
    app_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    app_token_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class PushFailure(Base):
    """A push channel's failed delivery, for the operator page; newest kept, bounded."""

    __tablename__ = "push_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float, index=True)
    username: Mapped[str | None] = mapped_column(String(255), nullable=True)
    operation: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")


class RequestReport(Base):
    """A person's "I didn't request this" about one login request, sent from their device.

    One per request (the first device to report wins); kept when the request row is purged, so
    it names the client, the user and the binding message itself.
    """

    __tablename__ = "request_reports"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)  # ciba_requests.id
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(255))
    binding_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What had become of the request when it was reported (denied, expired, approved, ...).
    request_status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float, index=True)
