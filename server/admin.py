"""Operator actions shared by the CLI, the admin pages and tests: users and clients."""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlparse

from . import audit
from .admin_errors import AdminError
from .admin_security import KEY_METHODS, security_profile
from .client_spec import DEFAULT_SCOPE, ClientSpec  # DEFAULT_SCOPE: also for importers of admin
from .oauth.clients import AUTH_METHODS, CIBA_GRANT_TYPE, DELIVERY_MODES, GRANT_TYPES, \
    RegisteredClient, SecretCache
from .oauth.keys import SUPPORTED_ALGS
from .provider import Provider
from .security import hash_password
from .storage import clients as client_repo, users as user_repo
from .storage.models import Client, User


def add_user(p: Provider, username: str, password: str, name: str = "",
             email: str | None = None, *, is_admin: bool = False,
             actor: str | None = None) -> User:
    if not username or not password:
        raise AdminError("username and password are required")
    now = p.clock.now()
    with p.db.session() as s:
        try:
            user = user_repo.add(s, username, hash_password(password), name=name, email=email,
                                 now=now)
        except user_repo.DuplicateUser as exc:
            raise AdminError(str(exc)) from None
        user.is_admin = is_admin
        s.add(audit.entry("user_created", actor or audit.cli_actor(), now, user_id=user.id,
                          username=username, is_admin=is_admin))
        s.flush()
        s.expunge(user)
    return user


def list_users(p: Provider) -> list[User]:
    with p.db.session() as s:
        rows = user_repo.all_users(s)
        s.expunge_all()
    return rows


def validate(p: Provider, spec: ClientSpec) -> list[str]:
    """Check a registration, the one place the CLI, the console and dynamic registration
    (RFC 7591) share; raises AdminError for the first problem. The grant types to store."""
    if spec.auth_method not in AUTH_METHODS:
        raise AdminError(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    grant_types = list(dict.fromkeys(spec.grant_types or [CIBA_GRANT_TYPE, "refresh_token"]))
    unsupported = [g for g in grant_types if g not in GRANT_TYPES]
    if unsupported:
        raise AdminError(f"unsupported grant type {' '.join(unsupported)}; the token endpoint "
                         f"implements {', '.join(GRANT_TYPES)}")
    if spec.delivery_mode not in DELIVERY_MODES:
        raise AdminError(f"delivery mode must be one of {', '.join(DELIVERY_MODES)}")
    if spec.delivery_mode in ("ping", "push") and not spec.notification_endpoint:
        raise AdminError("ping and push clients need --notification-endpoint (CIBA §4)")
    if spec.notification_endpoint and not _acceptable_endpoint(spec.notification_endpoint):
        raise AdminError("the notification endpoint must be an https URL (http only on loopback)")
    if spec.id_token_signed_response_alg and spec.id_token_signed_response_alg not in SUPPORTED_ALGS:
        raise AdminError(f"ID token algorithm must be one of {', '.join(SUPPORTED_ALGS)}")
    for label, uri in (("client URI", spec.client_uri), ("logo URI", spec.logo_uri),
                       ("jwks_uri", spec.jwks_uri)):
        if uri and not _acceptable_endpoint(uri):
            raise AdminError(f"the {label} must be an https URL (http only on loopback)")
    unknown = [s for s in spec.scope.split() if s not in p.scopes_supported]
    if unknown:
        raise AdminError(f"unknown scopes: {' '.join(unknown)}")
    if "openid" not in spec.scope.split() and CIBA_GRANT_TYPE in grant_types:
        raise AdminError("a CIBA client needs the openid scope (CIBA §7.1)")
    for number in (spec.polling_interval, spec.ciba_lifetime):
        if number is not None and number <= 0:
            raise AdminError("intervals and lifetimes must be positive")
    security_profile(spec)  # keys, certificates, signed requests, bound tokens, FAPI-CIBA
    return grant_types


def columns(p: Provider, spec: ClientSpec, grant_types: list[str]) -> dict:
    """The stored form of a validated registration, secrets apart."""
    return dict(
        name=spec.name or spec.client_id, client_uri=spec.client_uri or None,
        logo_uri=spec.logo_uri or None, auth_method=spec.auth_method,
        jwks=json.dumps(spec.jwks) if spec.jwks else None,
        grant_types=" ".join(grant_types), scope=spec.scope, delivery_mode=spec.delivery_mode,
        notification_endpoint=spec.notification_endpoint or None,
        polling_interval=spec.polling_interval, ciba_lifetime=spec.ciba_lifetime,
        user_code_required=spec.user_code_required,
        # FAPI 1 Advanced §8.6: PS256 unless the client chose ES256.
        id_token_signed_response_alg=spec.id_token_signed_response_alg
        or ("PS256" if spec.fapi else None),
        **security_profile(spec))


def secret_columns(p: Provider, auth_method: str, secret: str | None) -> dict:
    """A hash of the secret (argon2id), plus a sealed copy where client_secret_jwt needs it."""
    return dict(secret_hash=hash_password(secret) if secret else None,
                secret_encrypted=p.box.seal(secret) if secret and
                auth_method == "client_secret_jwt" else None)


def add_client(p: Provider, spec: ClientSpec, actor: str | None = None,
               self_registered: bool = False) -> tuple[dict, str | None]:
    """Register a client; returns its metadata and the secret to show once (None for keys and
    certificates)."""
    grant_types = validate(p, spec)
    secret = None if spec.auth_method in KEY_METHODS else spec.secret or secrets.token_urlsafe(32)
    now = p.clock.now()
    row = Client(client_id=spec.client_id, created_at=now, self_registered=self_registered,
                 **columns(p, spec, grant_types), **secret_columns(p, spec.auth_method, secret))
    with p.db.session() as s:
        try:
            client_repo.add(s, row)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        metadata = RegisteredClient(row, p.box, SecretCache()).metadata()
        s.add(audit.entry("client_created", actor or audit.cli_actor(), now,
                          client_id=spec.client_id, metadata=metadata,
                          self_registered=self_registered))
    return metadata, secret


def _acceptable_endpoint(url: str) -> bool:
    """CIBA §4: the client notification endpoint MUST be https; loopback http for development."""
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.hostname:
        return True
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")


def list_clients(p: Provider) -> list[dict]:
    with p.db.session() as s:
        ids = [c.client_id for c in client_repo.all_clients(s)]
    return [p.get_client(i).metadata() for i in ids]


def remove_client(p: Provider, client_id: str, actor: str | None = None) -> None:
    """Remove a client; its requests and tokens go with it (foreign keys cascade)."""
    with p.db.session() as s:
        row = client_repo.get(s, client_id)
        metadata = RegisteredClient(row, p.box, SecretCache()).metadata() if row else None
        if not client_repo.remove(s, client_id):
            raise AdminError(f"no client {client_id!r}")
        s.add(audit.entry("client_removed", actor or audit.cli_actor(), p.clock.now(),
                          client_id=client_id, metadata=metadata))
