"""Provider settings: every default with a one-line comment, each overridable by a CIBA_* env var.

A setting named ``polling_interval`` is read from ``CIBA_POLLING_INTERVAL``. Values are parsed
according to the type of the default. docs/configuration.md is the reference for operators.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "CIBA_"


@dataclass
class Settings:
    # Folder holding the SQLite database and other local state; created on first start.
    instance_path: str = "instance"
    # Public base URL; the "iss" of every token. Required in production (server.wsgi); serve/demo: http://HOST:PORT.
    issuer: str = ""
    # SQLAlchemy URL; empty means sqlite:///<instance_path>/provider.db.
    database_url: str = ""
    # Upgrade an older database schema (Alembic) when a process starts; false: refuse to start.
    db_auto_upgrade: bool = True
    # Redis URL for the event bus between provider processes; empty keeps events in-process.
    redis_url: str = ""
    # Lifetime of a CIBA request (auth_req_id) in seconds when the client asks for none.
    ciba_lifetime: int = 300
    # Upper bound for requested_expiry in seconds.
    max_requested_expiry: int = 1800
    # Days a CIBA request is kept after its expiry, then deleted (0: kept forever); keep it above the refresh token lifetime (a replayed auth_req_id revokes its tokens while the row exists).
    request_retention_days: int = 30
    # Minimum seconds between token polls (CIBA §7.3 "interval") unless the client sets its own.
    polling_interval: int = 5
    # Seconds added to a request's interval each time the client polls too fast (CIBA §11 slow_down).
    slow_down_increment: int = 5
    # Longest accepted binding_message, in characters (CIBA §7.1 asks for a short message).
    binding_message_max_length: int = 64
    # Access token lifetime in seconds (RFC 9068 JWT).
    access_token_lifetime: int = 600
    # ID token lifetime in seconds.
    id_token_lifetime: int = 600
    # Refresh token lifetime in seconds (only with offline_access).
    refresh_token_lifetime: int = 14 * 24 * 3600
    # Default signing algorithm for ID tokens; clients may choose ES256 or PS256.
    id_token_signing_alg: str = "RS256"
    # JWT access token algorithm (RS256, PS256, ES256); ES256 signs 5x faster (docs/performance.md).
    access_token_signing_alg: str = "ES256"
    # Seconds of clock skew allowed when checking client assertions and device JWS.
    clock_skew: int = 60
    # Lifetime of a one-time enrollment code in seconds.
    enrollment_code_lifetime: int = 300
    # Lifetime of the console approval link in seconds (capped by the request's own expiry).
    approval_link_lifetime: int = 600
    # When set, POST /testing/ciba-approval accepts this bearer token (conformance testing only).
    automated_approval_token: str = ""
    # Secret for Flask sessions and CSRF; empty: generated once and kept in the instance folder.
    secret_key: str = ""
    # Python path "module:name" of the CIBA policy (a CibaPolicy subclass or instance, see docs/extending.md); empty uses the defaults.
    policy: str = ""
    # Python path "module:function" of a login_hint resolver func(session, hint); overrides that one hook of the default policy.
    login_hint_resolver: str = ""
    # Python path "module:function" of a binding_message validator func(message, settings); overrides that one hook of the default policy.
    binding_message_validator: str = ""
    # Failed user_code attempts per user before a lockout.
    user_code_max_failures: int = 5
    # Seconds a user stays locked out after too many wrong user codes.
    user_code_lockout: int = 300
    # Failed password sign-ins (per account) after which each next attempt must wait 1, 2, 4... s.
    signin_delay_after: int = 3
    # Longest wait, in seconds, between password attempts before the lockout.
    signin_max_delay: int = 60
    # Failed password sign-ins per account in the window that lock the account's password out.
    signin_max_failures: int = 10
    # Failed password sign-ins from one client address in the window that lock that address out.
    signin_address_max_failures: int = 50
    # Seconds without a failed sign-in after which an account's or address's count starts over.
    signin_window: int = 900
    # Seconds a locked-out account or address is refused (answered like a wrong password).
    signin_lockout: int = 900
    # WebAuthn relying party id for passkeys: a domain the browser sees; empty: the issuer's host.
    webauthn_rp_id: str = ""
    # Origin browsers use for this provider's pages (passkeys); empty: the issuer's origin.
    webauthn_origin: str = ""
    # Gotify server base URL for the gotify channel; empty disables it.
    gotify_url: str = ""
    # Gotify administrator login used to create users, applications and clients.
    gotify_admin_user: str = ""
    # Gotify administrator password.
    gotify_admin_password: str = ""
    # Prefix of the Gotify user names the provider creates (one per provider user).
    gotify_user_prefix: str = "ciba-"
    # Seconds each Gotify call may take (posting retries once more after a short backoff).
    gotify_timeout: int = 5
    # Number of reverse proxies in front of the provider whose X-Forwarded-* headers to trust.
    trusted_proxies: int = 0
    # Pending CIBA requests one user may have at once; more get 429 with Retry-After (0: no cap).
    max_pending_per_user: int = 10
    # Pending CIBA requests one client may have at once; more get 429 with Retry-After (0: no cap).
    max_pending_per_client: int = 1000
    # WebSocket connections one device may hold at once, per provider process; the new socket is refused (429).
    max_sockets_per_device: int = 3
    # Seconds between the provider's pings on a device WebSocket; no pong by the next one: closed (1008).
    ws_ping_interval: int = 25
    # Largest accepted request body in bytes; larger ones get 413.
    max_body_bytes: int = 256 * 1024
    # Deepest nesting of arrays/objects accepted in any JSON input (bodies, frames, JWS, fields).
    json_max_depth: int = 32
    # `serve` only: seconds a connection may stay silent while a request is read, then dropped.
    serve_read_timeout: int = 30
    # Bearer token for /readyz and /metrics from other hosts (loopback needs none); empty: loopback only.
    ops_token: str = ""
    # Log line format: "text" (human) or "json" (one JSON object per line, for log collectors).
    log_format: str = "text"
    # serve: PEM certificate (chain) for https; empty serves plain http.
    tls_cert: str = ""
    # serve: PEM private key of tls_cert.
    tls_key: str = ""
    # PEM bundle of the CAs that issue tls_client_auth certificates (RFC 8705 §2.1); serve asks for a client certificate when set.
    tls_client_ca: str = ""
    # Header in which a TLS-terminating proxy forwards the client certificate (PEM, URL-encoded as nginx's $ssl_client_escaped_cert); empty: none.
    tls_client_cert_header: str = ""
    # Peer addresses or networks (comma-separated) allowed to send that header; also needs CIBA_TRUSTED_PROXIES > 0.
    tls_client_cert_proxies: str = "127.0.0.1,::1"
    # Base URL of the mTLS endpoints when they differ from the issuer's (RFC 8705 §5 mtls_endpoint_aliases); empty: the same.
    mtls_base_url: str = ""
    # Extra scopes (space-separated) for resource APIs, e.g. for client_credentials clients.
    api_scopes: str = ""
    # bc-authorize answers say whether the request reached an enrolled device (ciba_stack_delivery).
    report_delivery: bool = True
    # Serve POST /token (CIBA grant) and /bc-authorize (and the conformance hook's approvals, when CIBA_AUTOMATED_APPROVAL_TOKEN is set) in front of Flask, same protocol code (docs/performance.md).
    fast_lane: bool = True
    # SQLite: WAL checkpoints (the copy into the database file and its fsyncs) on a thread of each serving process, not inside a request's commit (docs/performance.md).
    sqlite_checkpoint_thread: bool = True
    # Serve GET /device/ws upgrades in front of Flask, same authentication and session (docs/performance.md).
    device_lane: bool = True
    # Extra values for tests and embedding; not read from the environment.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, then CIBA_* environment variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(raw, type(getattr(cls(), f.name)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return "sqlite:///" + str(Path(self.instance_path).resolve() / "provider.db")


def _parse(raw: str, kind: type) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    return raw


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md), built from the comments above."""
    import inspect
    import re

    lines = inspect.getsource(Settings).splitlines()
    rows, comment = [], ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# "):
            comment = stripped[2:]
            continue
        match = re.match(r"(\w+): [^=]+= (.+)$", stripped)
        if match and comment and match.group(1) != "extra":
            name, default = match.groups()
            rows.append(f"| `{ENV_PREFIX}{name.upper()}` | `{default}` | {comment} |")
        comment = ""
    header = ("# Configuration reference\n\nEvery setting has a default and can be overridden by "
              "an environment variable. CLI flags (`--instance`, `--issuer`) override both.\n"
              "This file is generated by `python -m server.config`; a test keeps it in step.\n\n"
              "| variable | default | meaning |\n| --- | --- | --- |\n")
    return header + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
