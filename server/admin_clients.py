"""Operator actions on registered clients beyond creating and removing them (server/admin.py):
reading a registration back for editing, changing it, rotating its secret, and the warnings an
operator sees for endpoints a self-registered client could not use. The console and the CLI both
go through here, and every change is written to the audit log with its before and after."""

from __future__ import annotations

import json
import secrets

from . import audit
from .admin import AdminError, ClientSpec, columns, secret_columns, validate
from .admin_security import KEY_METHODS
from .oauth import netguard
from .oauth.clients import RegisteredClient, SecretCache
from .provider import Provider
from .storage import clients as client_repo
from .storage.models import Client


def spec_of(row: Client) -> ClientSpec:
    """The registration as the form shows it (no secret: only its hash is stored)."""
    return ClientSpec(
        client_id=row.client_id, auth_method=row.auth_method,
        jwks=json.loads(row.jwks) if row.jwks else None, jwks_uri=row.jwks_uri,
        grant_types=row.grant_types.split(), delivery_mode=row.delivery_mode,
        notification_endpoint=row.notification_endpoint, polling_interval=row.polling_interval,
        ciba_lifetime=row.ciba_lifetime, scope=row.scope, name=row.name,
        client_uri=row.client_uri, logo_uri=row.logo_uri,
        user_code_required=bool(row.user_code_required),
        id_token_signed_response_alg=row.id_token_signed_response_alg,
        tls_subject_dn=row.tls_client_auth_subject_dn, tls_san_dns=row.tls_client_auth_san_dns,
        tls_san_uri=row.tls_client_auth_san_uri, tls_san_ip=row.tls_client_auth_san_ip,
        tls_san_email=row.tls_client_auth_san_email,
        bound_tokens=bool(row.tls_client_certificate_bound_access_tokens),
        request_signing_alg=row.backchannel_authentication_request_signing_alg,
        fapi=bool(row.fapi_ciba))


def get_spec(p: Provider, client_id: str) -> ClientSpec:
    with p.db.session() as s:
        row = client_repo.get(s, client_id)
        if row is None:
            raise AdminError(f"no client {client_id!r}")
        return spec_of(row)


def listing(p: Provider) -> list[dict]:
    """Every client's metadata, with ``self_registered`` (for the console's list)."""
    with p.db.session() as s:
        return [dict(_metadata(p, row), self_registered=bool(row.self_registered))
                for row in client_repo.all_clients(s)]


def _metadata(p: Provider, row: Client) -> dict:
    return RegisteredClient(row, p.box, SecretCache()).metadata()


def update_client(p: Provider, spec: ClientSpec, actor: str | None = None,
                  event: str = "client_updated") -> tuple[dict, str | None]:
    """Replace a registration with ``spec`` (same client_id). Returns its metadata and a new
    secret to show once when the change needs one (a switch to a secret method, or to
    client_secret_jwt, whose HMAC key cannot be recovered from the stored hash)."""
    grant_types = validate(p, spec)
    with p.db.session() as s:
        row = client_repo.get(s, spec.client_id)
        if row is None:
            raise AdminError(f"no client {spec.client_id!r}")
        before = _metadata(p, row)
        needs_secret = spec.auth_method not in KEY_METHODS and (
            row.secret_hash is None or (spec.auth_method == "client_secret_jwt"
                                        and row.secret_encrypted is None))
        secret = (spec.secret or secrets.token_urlsafe(32)) if needs_secret else None
        for name, value in columns(p, spec, grant_types).items():
            setattr(row, name, value)
        if spec.auth_method in KEY_METHODS:
            row.secret_hash = row.secret_encrypted = None
        elif secret:
            for name, value in secret_columns(p, spec.auth_method, secret).items():
                setattr(row, name, value)
        elif spec.auth_method != "client_secret_jwt":
            row.secret_encrypted = None  # only client_secret_jwt needs the secret itself
        after = _metadata(p, row)
        s.add(audit.entry(event, actor or audit.cli_actor(), p.clock.now(),
                          client_id=spec.client_id, changes=audit.changes(before, after),
                          new_secret=bool(secret)))
    return after, secret


def rotate_secret(p: Provider, client_id: str, actor: str | None = None) -> str:
    """A new strong secret, returned once; the old one stops working at once."""
    with p.db.session() as s:
        row = client_repo.get(s, client_id)
        if row is None:
            raise AdminError(f"no client {client_id!r}")
        if row.auth_method in KEY_METHODS:
            raise AdminError("this client proves itself with its own keys or certificate; it "
                             "has no secret to rotate")
        secret = secrets.token_urlsafe(32)
        for name, value in secret_columns(p, row.auth_method, secret).items():
            setattr(row, name, value)
        s.add(audit.entry("client_secret_rotated", actor or audit.cli_actor(), p.clock.now(),
                          client_id=client_id))
    return secret


def endpoint_warnings(spec: ClientSpec) -> list[str]:
    """What an operator should know about the client's URLs: each one a self-registered client
    would be refused (http, or a loopback, private or link-local address). Allowed here."""
    warnings = []
    for label, url in (("notification endpoint", spec.notification_endpoint),
                       ("JWKS URI", spec.jwks_uri)):
        reason = netguard.refuse_reason(url) if url else None
        if reason:
            warnings.append(f"the {label} {reason}: allowed for a client an operator registers, "
                            "but check that the provider should reach it")
    return warnings
