"""Dynamic client registration: RFC 7591 (register) and RFC 7592 (read, update, delete), with
the CIBA registration metadata of CIBA Core 1.0 §4.

- Registration needs an initial access token (RFC 7591 §3: the endpoint MAY be protected; here it
  always is). Operators make them (``ciba-provider clients registration-token``, the console);
  only their SHA-256 digest is stored; each has an expiry and may be single-use.
- The answer carries a registration access token (256 bits, stored as a digest) and the
  registration_client_uri (RFC 7592 §3). The token is rotated on every update (RFC 7592 §3 lets
  the server issue a new one; the old one stops working at once); reading does not rotate it.
- A self-registered client's URLs (notification endpoint, jwks_uri) must be https on public
  addresses (oauth/netguard.py), checked here and again before each use.
- Errors: invalid_client_metadata (RFC 7591 §3.2.2) for bad metadata; a missing, unknown,
  expired or used token is 401 invalid_token (RFC 6750 §3.1; RFC 7592 §2 for the registration
  access token). CIBA clients have no redirect URIs, so invalid_redirect_uri never applies: a
  request with redirect_uris or response_types is invalid_client_metadata.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import audit
from .admin import DEFAULT_SCOPE, AdminError, ClientSpec, add_client, remove_client, validate
from .admin_clients import update_client
from .admin_security import KEY_METHODS
from .oauth import netguard
from .oauth.clients import AUTH_METHODS, CIBA_GRANT_TYPE
from .oauth.errors import safe_description
from .oauth.keys import SUPPORTED_ALGS
from .security import check_password, digest, new_id
from .storage import registration as repo
from .storage.models import InitialAccessToken

if TYPE_CHECKING:
    from .provider import Provider

#: Grant types a client may register for itself: not client_credentials, whose tokens have no
#: user and serve the provider's own APIs (an operator registers such clients).
GRANT_TYPES = (CIBA_GRANT_TYPE, "refresh_token")
#: RFC 8705 §2.1.2 metadata: the certificate subject of a tls_client_auth client (one of them).
TLS_SUBJECT = {"tls_client_auth_subject_dn": "tls_subject_dn",
               "tls_client_auth_san_dns": "tls_san_dns", "tls_client_auth_san_uri": "tls_san_uri",
               "tls_client_auth_san_ip": "tls_san_ip", "tls_client_auth_san_email": "tls_san_email"}
#: Fields of a registration response that a client echoes back in an update; ignored there.
SERVER_FIELDS = ("registration_access_token", "registration_client_uri",
                 "client_secret_expires_at", "client_id_issued_at")


class RegistrationError(Exception):
    def __init__(self, error: str, description: str, status: int = 400,
                 challenge: str | None = None) -> None:
        # RFC 7591 §3.2.2: error_description is ASCII (RFC 6749 §5.2's set: no " or \\).
        description = safe_description(description.replace("§", "section "), limit=1000)
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge} if self.challenge else {}


def _metadata_error(description: str) -> RegistrationError:
    return RegistrationError("invalid_client_metadata", description)


def _token_error(description: str, present: bool = True) -> RegistrationError:
    """401 invalid_token (RFC 6750 §3.1); the challenge names no error when no token came."""
    return RegistrationError("invalid_token", description, 401,
                             'Bearer error="invalid_token"' if present else "Bearer")


# -- initial access tokens -------------------------------------------------------------------
def issue_initial_token(p: "Provider", label: str, lifetime: int, single_use: bool,
                        actor: str) -> tuple[str, InitialAccessToken]:
    """A new initial access token (returned once) and its stored row."""
    if lifetime <= 0:
        raise AdminError("the token's lifetime must be positive")
    token, now = new_id(32), p.clock.now()
    row = InitialAccessToken(id=new_id(9), token_hash=digest(token), label=label.strip()[:255],
                             created_at=now, created_by=actor, expires_at=now + lifetime,
                             single_use=single_use, used_count=0)
    with p.db.session() as s:
        repo.add_token(s, row)
        s.add(audit.entry("registration_token_created", actor, now, token_id=row.id,
                          label=row.label, single_use=single_use, lifetime=lifetime))
    return token, row


def revoke_initial_token(p: "Provider", token_id: str, actor: str) -> None:
    now = p.clock.now()
    with p.db.session() as s:
        if repo.revoke(s, token_id, now) is None:
            raise AdminError(f"no active registration token {token_id!r}")
        s.add(audit.entry("registration_token_revoked", actor, now, token_id=token_id))


def list_initial_tokens(p: "Provider") -> list[InitialAccessToken]:
    with p.db.session() as s:
        rows = repo.all_tokens(s)
        s.expunge_all()
    return rows


# -- metadata ----------------------------------------------------------------------------------
def _string(body: dict, name: str, limit: int = 2000) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _metadata_error(f"{name} must be a string of at most {limit} characters")
    return value


def _public_url(name: str, url: str | None) -> None:
    reason = netguard.refuse_reason(url) if url else None
    if reason:
        raise _metadata_error(f"{name} {reason}")


def spec_from_metadata(p: "Provider", body: Any, client_id: str) -> ClientSpec:
    """RFC 7591 §2, CIBA §4 and RFC 8705 §2.1.2/§3.4 metadata to a ClientSpec, checked by
    admin.validate like every registration; unknown fields are ignored (RFC 7591 §2)."""
    if not isinstance(body, dict):
        raise _metadata_error("the request body must be a JSON object")
    if body.get("redirect_uris") or body.get("response_types"):
        raise _metadata_error("this provider has no redirect-based flows: register without "
                              "redirect_uris and response_types")
    if body.get("software_statement") is not None:
        raise RegistrationError("unapproved_software_statement",
                                "software statements are not accepted here")
    method = _string(body, "token_endpoint_auth_method") or "client_secret_basic"  # §2 default
    if method not in AUTH_METHODS:
        raise _metadata_error(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    grant_types = body.get("grant_types", [CIBA_GRANT_TYPE, "refresh_token"])
    if not isinstance(grant_types, list) or not grant_types or \
            any(g not in GRANT_TYPES for g in grant_types):
        raise _metadata_error(f"grant_types must be a list of {', '.join(GRANT_TYPES)}")
    mode = _string(body, "backchannel_token_delivery_mode")
    if CIBA_GRANT_TYPE in grant_types and mode is None:
        raise _metadata_error("backchannel_token_delivery_mode is required (CIBA §4)")
    endpoint = _string(body, "backchannel_client_notification_endpoint")
    if mode in ("ping", "push") and not endpoint:
        raise _metadata_error("backchannel_client_notification_endpoint is required for ping "
                              "and push (CIBA §4)")
    # CIBA §4 / §7.1.1: signed authentication requests, checked against the client's keys.
    signing_alg = _string(body, "backchannel_authentication_request_signing_alg")
    bound = body.get("tls_client_certificate_bound_access_tokens")  # RFC 8705 §3.4
    if bound is not None and not isinstance(bound, bool):
        raise _metadata_error("tls_client_certificate_bound_access_tokens must be a boolean")
    user_code = body.get("backchannel_user_code_parameter", False)
    if not isinstance(user_code, bool):
        raise _metadata_error("backchannel_user_code_parameter must be a boolean")
    alg = _string(body, "id_token_signed_response_alg")
    if alg is not None and alg not in SUPPORTED_ALGS:
        raise _metadata_error(f"id_token_signed_response_alg must be one of "
                              f"{', '.join(SUPPORTED_ALGS)}")
    jwks = body.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise _metadata_error("jwks must be a JSON Web Key Set object")
    jwks_uri = _string(body, "jwks_uri")
    _public_url("backchannel_client_notification_endpoint", endpoint)
    _public_url("jwks_uri", jwks_uri)
    for name in ("client_uri", "logo_uri"):
        value = _string(body, name)
        if value and not value.startswith("https://"):
            raise _metadata_error(f"{name} must be an https URL")
    spec = ClientSpec(
        client_id=client_id, auth_method=method, jwks=jwks, jwks_uri=jwks_uri,
        grant_types=list(dict.fromkeys(grant_types)), delivery_mode=mode or "poll",
        notification_endpoint=endpoint, scope=_string(body, "scope") or DEFAULT_SCOPE,
        name=_string(body, "client_name", 255) or "", client_uri=_string(body, "client_uri"),
        logo_uri=_string(body, "logo_uri"), user_code_required=user_code,
        id_token_signed_response_alg=alg, request_signing_alg=signing_alg, bound_tokens=bound,
        **{field: _string(body, name, 1000) for name, field in TLS_SUBJECT.items()})
    try:
        validate(p, spec)
    except AdminError as exc:
        raise _metadata_error(for_client(str(exc))) from None
    return spec


#: The CLI options named in validation messages, and the metadata a client sends instead.
_FLAGS = (("--notification-endpoint", "a notification endpoint"), ("--jwks-uri URL", "jwks_uri"),
          ("--jwks FILE", "jwks"), ("--jwks-uri", "jwks_uri"), ("--jwks", "jwks"),
          ("--tls-subject-dn", "tls_client_auth_subject_dn"), ("--tls-san-", "tls_client_auth_san_"))


def for_client(text: str) -> str:
    """A validation message written for operators, made fit for a client (no CLI flags)."""
    for flag, metadata in _FLAGS:
        text = text.replace(flag, metadata)
    return text


# -- the endpoints' core -----------------------------------------------------------------------
@dataclass
class Registrar:
    p: "Provider"

    def client_uri(self, client_id: str) -> str:
        return self.p.endpoint(f"/register/{client_id}")

    def register(self, token: str | None, body: Any) -> dict:
        """RFC 7591 §3.1; the §3.2.1 response body (status 201)."""
        p, now = self.p, self.p.clock.now()
        if not token:
            raise _token_error("an initial access token is required", present=False)
        with p.db.session() as s:
            grant = repo.usable(s, digest(token), now)
        if grant is None:
            raise _token_error("the initial access token is unknown, expired, revoked or used")
        client_id = new_id(16)
        spec = spec_from_metadata(p, body, client_id)
        with p.db.session() as s:
            if not repo.use(s, digest(token), now):
                raise _token_error("the initial access token was used meanwhile")
        try:
            metadata, secret = add_client(p, spec, actor=f"registration:{grant.id}",
                                          self_registered=True)
        except AdminError as exc:
            with p.db.session() as s:
                repo.give_back(s, grant.id)
            raise _metadata_error(for_client(str(exc))) from None
        return self._answer(client_id, metadata, secret, self._new_access_token(client_id),
                            issued_at=int(now))

    def read(self, client_id: str, token: str | None) -> dict:
        """RFC 7592 §2.1."""
        self._authenticate(client_id, token)
        client = self.p.get_client(client_id)
        return self._answer(client_id, client.metadata(), None, token or "",
                            issued_at=int(client.row.created_at))

    def update(self, client_id: str, token: str | None, body: Any) -> dict:
        """RFC 7592 §2.2: the body replaces the registration; a new access token is issued."""
        row = self._authenticate(client_id, token)
        if not isinstance(body, dict):
            raise _metadata_error("the request body must be a JSON object")
        if body.get("client_id") != client_id:
            raise _metadata_error("client_id must be present and match this client")
        sent_secret = body.get("client_secret")
        if sent_secret is not None and not (isinstance(sent_secret, str) and row.secret_hash
                                            and check_password(sent_secret, row.secret_hash)):
            raise _metadata_error("client_secret does not match the current secret; a client "
                                  "cannot choose its own")
        fields = {k: v for k, v in body.items()
                  if k not in SERVER_FIELDS and k not in ("client_id", "client_secret")}
        spec = spec_from_metadata(self.p, fields, client_id)
        try:
            metadata, secret = update_client(self.p, spec, actor=f"client:{client_id}")
        except AdminError as exc:
            raise _metadata_error(for_client(str(exc))) from None
        return self._answer(client_id, metadata, secret, self._new_access_token(client_id),
                            issued_at=int(row.created_at))

    def delete(self, client_id: str, token: str | None) -> None:
        """RFC 7592 §2.3: the client, its access token, requests and tokens are gone."""
        self._authenticate(client_id, token)
        remove_client(self.p, client_id, actor=f"client:{client_id}")

    # -- helpers -------------------------------------------------------------------------------
    def _authenticate(self, client_id: str, token: str | None):
        """RFC 7592 §2: a bad token, or a client that does not exist, is 401 invalid_token."""
        if not token:
            raise _token_error("the registration access token is missing", present=False)
        with self.p.db.session() as s:
            row = repo.self_registered(s, client_id)
            if row is None or not secrets.compare_digest(row.registration_token_hash,
                                                         digest(token)):
                raise _token_error("the registration access token is not valid for this client")
            s.expunge(row)
        return row

    def _new_access_token(self, client_id: str) -> str:
        token = new_id(32)
        with self.p.db.session() as s:
            repo.set_registration_token(s, client_id, digest(token))
        return token

    def _answer(self, client_id: str, metadata: dict, secret: str | None, access_token: str,
                issued_at: int) -> dict:
        """RFC 7591 §3.2.1 and RFC 7592 §3: the registered metadata and the server's fields."""
        body = dict(metadata)
        body.update(client_id=client_id, client_id_issued_at=issued_at,
                    registration_access_token=access_token,
                    registration_client_uri=self.client_uri(client_id))
        if secret:
            body.update(client_secret=secret, client_secret_expires_at=0)  # 0: never expires
        elif metadata.get("token_endpoint_auth_method") not in KEY_METHODS:
            body["client_secret_expires_at"] = 0
        return body
