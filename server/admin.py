"""Operator actions shared by the CLI, the admin pages and tests: users and clients."""

from __future__ import annotations

import dataclasses
import json
import secrets
from urllib.parse import urlparse
from dataclasses import dataclass, field

from .admin_security import KEY_METHODS, security_profile
from .oauth.clients import AUTH_METHODS, CIBA_GRANT_TYPE, DELIVERY_MODES, GRANT_TYPES
from .oauth.keys import SUPPORTED_ALGS
from .provider import Provider
from .security import hash_password
from .storage import clients as client_repo, users as user_repo
from .storage.models import Client, User

DEFAULT_SCOPE = "openid profile email offline_access"


class AdminError(ValueError):
    """A request an operator can fix (bad option, duplicate name); shown without a traceback."""


def add_user(p: Provider, username: str, password: str, name: str = "",
             email: str | None = None) -> User:
    if not username or not password:
        raise AdminError("username and password are required")
    with p.db.session() as s:
        try:
            user = user_repo.add(s, username, hash_password(password), name=name, email=email,
                                 now=p.clock.now())
        except user_repo.DuplicateUser as exc:
            raise AdminError(str(exc)) from None
        s.expunge(user)
    return user


def list_users(p: Provider) -> list[User]:
    with p.db.session() as s:
        rows = user_repo.all_users(s)
        s.expunge_all()
    return rows


@dataclass
class ClientSpec:
    client_id: str
    secret: str | None = None
    auth_method: str = "client_secret_basic"
    jwks: dict | None = None
    grant_types: list[str] = field(default_factory=list)
    delivery_mode: str = "poll"
    notification_endpoint: str | None = None
    polling_interval: int | None = None
    ciba_lifetime: int | None = None
    scope: str = DEFAULT_SCOPE
    name: str = ""
    client_uri: str | None = None
    logo_uri: str | None = None
    user_code_required: bool = False
    id_token_signed_response_alg: str | None = None
    jwks_uri: str | None = None
    # RFC 8705 §2.1.2: which certificate is the client's (tls_client_auth; exactly one).
    tls_subject_dn: str | None = None
    tls_san_dns: str | None = None
    tls_san_uri: str | None = None
    tls_san_ip: str | None = None
    tls_san_email: str | None = None
    # RFC 8705 §3.4; None: on for the mutual-TLS methods and FAPI clients, off otherwise.
    bound_tokens: bool | None = None
    # CIBA §4 backchannel_authentication_request_signing_alg: requests must be signed.
    request_signing_alg: str | None = None
    fapi: bool = False


def add_client(p: Provider, spec: ClientSpec) -> tuple[dict, str | None]:
    """Register a client; returns its metadata and the secret to show once (None for keys)."""
    if spec.auth_method not in AUTH_METHODS:
        raise AdminError(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    bad_grants = [g for g in spec.grant_types if g not in GRANT_TYPES]
    if bad_grants:
        raise AdminError(f"unsupported grant type {' '.join(bad_grants)}; the token endpoint "
                         f"implements {', '.join(GRANT_TYPES)}")
    if spec.delivery_mode not in DELIVERY_MODES:
        raise AdminError(f"delivery mode must be one of {', '.join(DELIVERY_MODES)}")
    if spec.delivery_mode in ("ping", "push") and not spec.notification_endpoint:
        raise AdminError("ping and push clients need --notification-endpoint (CIBA §4)")
    if spec.notification_endpoint and not _acceptable_endpoint(spec.notification_endpoint):
        raise AdminError("the notification endpoint must be an https URL (http only on loopback)")
    if spec.id_token_signed_response_alg and spec.id_token_signed_response_alg not in SUPPORTED_ALGS:
        raise AdminError(f"ID token algorithm must be one of {', '.join(SUPPORTED_ALGS)}")
    for label, uri in (("client URI", spec.client_uri), ("logo URI", spec.logo_uri)):
        if uri and not _acceptable_endpoint(uri):
            raise AdminError(f"the {label} must be an https URL (http only on loopback)")
    unknown = [s for s in spec.scope.split() if s not in p.scopes_supported]
    if unknown:
        raise AdminError(f"unknown scopes: {' '.join(unknown)}")
    for number in (spec.polling_interval, spec.ciba_lifetime):
        if number is not None and number <= 0:
            raise AdminError("intervals and lifetimes must be positive")
    if spec.fapi and not spec.id_token_signed_response_alg:
        spec = dataclasses.replace(spec, id_token_signed_response_alg="PS256")  # FAPI §8.6
    grant_types = list(dict.fromkeys(spec.grant_types or [CIBA_GRANT_TYPE, "refresh_token"]))
    security = security_profile(spec)
    secret = None
    if spec.auth_method not in KEY_METHODS:
        secret = spec.secret or secrets.token_urlsafe(32)
    row = Client(
        client_id=spec.client_id, name=spec.name or spec.client_id,
        client_uri=spec.client_uri or None, logo_uri=spec.logo_uri or None,
        secret_hash=hash_password(secret) if secret else None,
        secret_encrypted=p.box.seal(secret) if secret and spec.auth_method == "client_secret_jwt"
        else None,
        auth_method=spec.auth_method, jwks=json.dumps(spec.jwks) if spec.jwks else None,
        grant_types=" ".join(grant_types), scope=spec.scope, delivery_mode=spec.delivery_mode,
        notification_endpoint=spec.notification_endpoint, polling_interval=spec.polling_interval,
        ciba_lifetime=spec.ciba_lifetime, user_code_required=spec.user_code_required,
        id_token_signed_response_alg=spec.id_token_signed_response_alg, created_at=p.clock.now(),
        **security)
    with p.db.session() as s:
        try:
            client_repo.add(s, row)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
    client = p.get_client(spec.client_id)
    return client.metadata(), secret


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


def remove_client(p: Provider, client_id: str) -> None:
    with p.db.session() as s:
        if not client_repo.remove(s, client_id):
            raise AdminError(f"no client {client_id!r}")
