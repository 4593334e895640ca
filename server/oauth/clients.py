"""Registered clients as Authlib sees them (ClientMixin), with the metadata CIBA adds (CIBA §4)."""

from __future__ import annotations

import hmac
import json
import os
import time
from typing import Callable

from authlib.oauth2.rfc6749 import ClientMixin
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from .. import oslocks
from ..security import SecretBox, verify_password
from ..storage.models import Client
from .ciba_core import CIBA_GRANT_TYPE
from .client_jwks import JwksCache

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt",
                "tls_client_auth", "self_signed_tls_client_auth")
DELIVERY_MODES = ("poll", "ping", "push")
#: The grant types the token endpoint implements (a client may be registered for these only).
GRANT_TYPES = (CIBA_GRANT_TYPE, "refresh_token", "client_credentials")
#: Scopes about the end-user: they mean nothing in a client_credentials token (no user).
USER_SCOPES = ("openid", "profile", "email", "offline_access")


class SecretCache:
    """Remembers recent successful secret checks so polling clients don't pay argon2id each time.

    Only an HMAC of (client_id, secret, stored hash) under a per-process random key is kept.
    ``rehash(client_id, old_hash, new_hash)`` is called when a check succeeds against a hash of
    an older scheme or weaker parameters (security.verify_password), to store the new one.
    """

    def __init__(self, ttl: float = 300.0, max_entries: int = 10_000,
                 rehash: Callable[[str, str, str], None] | None = None) -> None:
        self._rehash = rehash
        self._key = os.urandom(32)
        self._ttl, self._max = ttl, max_entries
        self._seen: dict[bytes, float] = {}
        self._lock = oslocks.os_lock()  # never yields inside (server/oslocks.py)

    def _tag(self, client_id: str, secret: str, stored: str) -> bytes:
        # hmac.digest: the same HMAC-SHA256 in one C call (hmac.new builds a Python object).
        return hmac.digest(self._key, "\0".join((client_id, secret, stored)).encode(),
                           "sha256")

    def check(self, client_id: str, secret: str, stored: str | None) -> bool:
        if not stored:
            return False
        tag, now = self._tag(client_id, secret, stored), time.monotonic()
        with self._lock:
            if self._seen.get(tag, 0) > now:
                return True
        ok, new_hash = verify_password(secret, stored)
        if not ok:
            return False
        if new_hash and self._rehash is not None:
            self._rehash(client_id, stored, new_hash)
        with self._lock:
            if len(self._seen) >= self._max:
                self._seen.clear()
            self._seen[tag] = now + self._ttl
        return True


class RegisteredClient(ClientMixin):
    """Adapter from the stored Client row to Authlib's ClientMixin."""

    def __init__(self, row: Client, box: SecretBox, secrets: SecretCache,
                 jwks_cache: "JwksCache | None" = None) -> None:
        self.row, self._box, self._secrets = row, box, secrets
        self._jwks_cache = jwks_cache

    client_id = property(lambda self: self.row.client_id)
    name = property(lambda self: self.row.name or self.row.client_id)

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.row.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self._secrets.check(self.row.client_id, client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # The same method authenticates the client at every endpoint (CIBA §7.1).
        return method == self.row.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types.split()

    @property
    def grant_types(self) -> list[str]:
        return self.row.grant_types.split()

    def shared_secret_key(self) -> OctKey:
        """The HMAC key for client_secret_jwt (RFC 7523); needs the secret itself."""
        if not self.row.secret_encrypted:
            raise LookupError("client has no retrievable secret")
        return OctKey.import_key(self._box.open(self.row.secret_encrypted))

    def registered_jwks(self, refresh: bool = False) -> dict:
        """The client's public JWKS document: registered inline, or fetched from its jwks_uri
        (oauth/client_jwks.py; a self-registered client's URI must stay public). LookupError
        when the jwks_uri cannot be fetched."""
        if self.row.jwks_uri:
            if self._jwks_cache is None:
                raise LookupError("the client's jwks_uri cannot be fetched here")
            return self._jwks_cache.get(self.row.jwks_uri, refresh,
                                        guarded=bool(self.row.self_registered))
        return json.loads(self.row.jwks or '{"keys": []}')

    def public_keys(self, refresh: bool = False) -> KeySet:
        """The keys of ``registered_jwks``; LookupError when there are none usable."""
        try:
            return KeySet.import_key_set(self.registered_jwks(refresh))
        except (ValueError, TypeError, KeyError, JoseError):
            raise LookupError("the client's JWKS holds no usable public key") from None

    def metadata(self) -> dict:
        """Registration as printed by ``clients add`` and ``clients list`` (no secrets)."""
        r = self.row
        data = {
            "client_id": r.client_id, "client_name": self.name,
            "token_endpoint_auth_method": r.auth_method, "grant_types": self.grant_types,
            "scope": r.scope, "backchannel_token_delivery_mode": r.delivery_mode,
            "backchannel_user_code_parameter": r.user_code_required,
        }
        for key in ("notification_endpoint", "polling_interval", "ciba_lifetime",
                    "id_token_signed_response_alg", "client_uri", "logo_uri", "jwks_uri",
                    "tls_client_auth_subject_dn", "tls_client_auth_san_dns",
                    "tls_client_auth_san_uri", "tls_client_auth_san_ip",
                    "tls_client_auth_san_email", "backchannel_authentication_request_signing_alg",
                    "tls_client_certificate_bound_access_tokens"):
            value = getattr(r, key)
            if value:
                out_key = "backchannel_client_notification_endpoint" \
                    if key == "notification_endpoint" else key
                data[out_key] = value
        if r.jwks:
            data["jwks"] = json.loads(r.jwks)
        if r.fapi_ciba:
            data["fapi_ciba"] = True
        return data
