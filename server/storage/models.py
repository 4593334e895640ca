"""Table definitions. Secrets are stored hashed (or encrypted where a protocol needs the value)."""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, false,
                        func)
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
    # A login_hint names a user by username or by email, the email case-insensitively
    # (users.by_username_or_email): without an index on lower(email) that lookup read the
    # whole table (migration 0008).
    __table_args__ = (Index("ix_users_email_lower", func.lower(email)),)


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
    # RFC 7591 §2 jwks_uri: where the client publishes its keys (instead of ``jwks``).
    jwks_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    # RFC 8705 §2.1.2: the certificate of a tls_client_auth client (exactly one is set).
    tls_client_auth_subject_dn: Mapped[str | None] = mapped_column(Text, nullable=True)
    tls_client_auth_san_dns: Mapped[str | None] = mapped_column(Text, nullable=True)
    tls_client_auth_san_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    tls_client_auth_san_ip: Mapped[str | None] = mapped_column(Text, nullable=True)
    tls_client_auth_san_email: Mapped[str | None] = mapped_column(Text, nullable=True)
    # RFC 8705 §3.4: access tokens are bound to the client's TLS certificate.
    tls_client_certificate_bound_access_tokens: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false())
    # CIBA §4: when set, authentication requests must be signed request objects with this alg.
    backchannel_authentication_request_signing_alg: Mapped[str | None] = mapped_column(
        String(8), nullable=True)
    # FAPI-CIBA profile: signed requests, mTLS or private_key_jwt, PS256/ES256, bound tokens,
    # poll or ping only.
    fapi_ciba: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    grant_types: Mapped[str] = mapped_column(Text)  # space-separated
    scope: Mapped[str] = mapped_column(Text)  # space-separated allowed scopes
    delivery_mode: Mapped[str] = mapped_column(String(8), default="poll")
    notification_endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    polling_interval: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ciba_lifetime: Mapped[int | None] = mapped_column(Integer, nullable=True)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(8), nullable=True)
    user_code_required: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    # Registered by the client itself (RFC 7591): its URLs must stay public (oauth/netguard.py).
    self_registered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # RFC 7592 registration access token (SHA-256 digest); only for self-registered clients.
    # Looked up with the client_id of the registration_client_uri, so no index is needed.
    registration_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


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

    # The expiry sweep's search (every SWEEP_EVERY seconds per process) is by (status,
    # expires_at): without it, a scan of every request ever made (migration 0009).
    __table_args__ = (Index("ix_ciba_requests_user_status", "user_id", "status"),
                      Index("ix_ciba_requests_client_status", "client_id", "status"),
                      Index("ix_ciba_requests_status_expires", "status", "expires_at"))


class Token(Base):
    """Tokens issued for one grant; revoking the grant revokes all of them."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    # None for a client_credentials token (RFC 6749 §4.4: no user).
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                nullable=True)
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


class CacheVersion(Base):
    """A counter bumped in the same transaction as every write to users, clients or devices;
    each process keeps its caches of them while the counter it read is unchanged
    (server/storage/versions.py)."""

    __tablename__ = "cache_versions"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


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


class NotificationOutbox(Base):
    """One ping or push notification to a client (CIBA §10.2, §10.3, §12), kept until it is
    delivered or finally fails: a durable outbox that survives restarts and is shared by
    processes, which claim a row with a lease before sending it."""

    __tablename__ = "notification_outbox"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # One delivery per decision.
    request_id: Mapped[str] = mapped_column(ForeignKey("ciba_requests.id", ondelete="CASCADE"),
                                            unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(8))  # ping | push
    endpoint: Mapped[str] = mapped_column(Text)
    # SecretBox-sealed JSON {"token": bearer, "body": payload}; None until a push success
    # payload is made (once, with the tokens, in the transaction that uses up the request).
    payload_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    # pending | delivered | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    # No attempt after this (the request's expiry, with a short grace for late decisions).
    deadline: Mapped[float] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_notification_outbox_due", "status", "next_attempt_at"),)


class AuditEvent(Base):
    """One security event (sign-in, decision, token issue, operator change, ...). Append-only:
    the repository has no update or delete. Never holds a secret, token or password."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    event: Mapped[str] = mapped_column(String(48), index=True)
    # Who did it: "user:alice", "operator:olga", "cli:root", "device:<id>", "client:<id>",
    # "console" (a person on the approval page), "anonymous".
    actor: Mapped[str] = mapped_column(String(300))
    # The client address of the HTTP request (after CIBA_TRUSTED_PROXIES), when there was one.
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The user and the client the event concerns, when it concerns one; no foreign keys, so the
    # record outlives them.
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    client_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON object


class InitialAccessToken(Base):
    """Grants one (single_use) or several dynamic client registrations (RFC 7591 §3) until it
    expires or is revoked. Only the SHA-256 digest of the token is kept."""

    __tablename__ = "initial_access_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # shown; grants nothing
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(300))
    expires_at: Mapped[float] = mapped_column(Float)
    single_use: Mapped[bool] = mapped_column(Boolean, default=False)
    used_count: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Passkey(Base):
    """A WebAuthn credential (passkey) a user signs in with instead of the password. Only its
    public key is stored; the private key stays in the person's authenticator."""

    __tablename__ = "passkeys"
    id: Mapped[str] = mapped_column(String(1400), primary_key=True)  # credential id, base64url
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(Text)  # COSE key, base64url
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100), default="")
    transports: Mapped[str] = mapped_column(String(255), default="")  # space-separated
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


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
