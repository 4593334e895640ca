"""Token endpoint grants on Authlib: the CIBA grant (CIBA §10.1, §11; its protocol steps are in
ciba_core.py, its storage here) and refresh_token with rotation (RFC 6749 §6; reuse of a rotated
refresh token revokes the whole grant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749.grants import RefreshTokenGrant as _RefreshTokenGrant

from ..security import digest
from ..storage import ciba_requests, tokens as token_repo, users
from . import ciba_core, errors, request_ids
from .ciba_core import AuthRequestMixin
from .clients import AUTH_METHODS
from .mtls import binding_for
from .tokens import Grant

if TYPE_CHECKING:
    from .context import OAuthProvider


class StoredAuthRequest(AuthRequestMixin):
    """ciba_core's view of a stored request (the columns storage.ciba_requests read)."""

    __slots__ = ("row", "_directory")

    def __init__(self, row, directory) -> None:
        self.row, self._directory = row, directory

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_status(self) -> str:
        return self.row.status

    def get_expires_at(self) -> float:
        return self.row.expires_at

    def get_scope(self) -> str:
        return self.row.scope

    def get_user(self):
        return self._directory.user(self.row.user_id)


class CibaGrant(ciba_core.CibaGrant):
    """grant_type=urn:openid:params:grant-type:ciba with auth_req_id (CIBA §10.1): ciba_core's
    protocol steps on this provider's storage, polling tracker and token issuer."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    @property
    def provider(self) -> "OAuthProvider":
        return self.server.provider

    def now(self) -> float:
        return self.provider.clock.now()

    def get_delivery_mode(self, client) -> str:
        return client.row.delivery_mode

    def validate_client_binding(self, client) -> None:
        # RFC 8705 §3: checked before the auth_req_id is used up.
        self.request.x5t_s256 = binding_for(client, self.request)

    def query_auth_request(self, auth_req_id: str) -> StoredAuthRequest | None:
        # One indexed read; a pending poll writes nothing (polling.py keeps its interval).
        row = ciba_requests.find_by_hash(self.provider.db, request_ids.key(auth_req_id))
        return StoredAuthRequest(row, self.provider.directory) if row is not None else None

    def should_slow_down(self, auth_request: StoredAuthRequest, now: float) -> bool:
        """After slow_down the interval of this request grows by 5 s (RFC 8628 §3.5)."""
        p, req = self.provider, auth_request.row
        too_fast, _ = p.polls.poll(req.id, now, req.interval, p.settings.slow_down_increment,
                                   req.expires_at)
        return too_fast

    def revoke_exchanged(self, auth_request: StoredAuthRequest) -> None:
        with self.provider.db.session() as s:
            token_repo.revoke_grant(s, auth_request.row.id)

    def exchange(self, auth_request: StoredAuthRequest, user) -> dict:
        p, req, client = self.provider, auth_request.row, self.request.client
        grant = Grant(grant_id=req.id, client_id=client.client_id, user=user,
                      scope=req.scope, auth_time=req.auth_time, acr=_first_acr(req.acr_values),
                      x5t_s256=self.request.x5t_s256)
        token, records = p.tokens.build(grant, client)
        # CIBA §11: single use. The exchange, the token record and its audit commit together
        # (one transaction of prepared statements); a concurrent poll that lost the race gets
        # invalid_grant and its tokens are dropped.
        if not ciba_requests.exchange(p.db, req.id, *records.steps()):
            raise errors.InvalidGrantError("auth_req_id was already used")
        return token


class RefreshTokenGrant(_RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def provider(self) -> "OAuthProvider":
        return self.server.provider

    def authenticate_refresh_token(self, refresh_token: str):
        p = self.provider
        with p.db.session() as s:
            record = token_repo.by_refresh_hash(s, digest(refresh_token))
            if record is None or record.revoked or (record.refresh_expires_at or 0) <= p.clock.now():
                return None
            if record.rotated:
                # Reuse of a rotated refresh token: treat as stolen, revoke the grant.
                token_repo.revoke_grant(s, record.grant_id)
                s.commit()
                return None
        # Rotation happens in issue_token, once the client and scope checks have passed, so a
        # refused request (wrong client, broader scope) does not burn the refresh token.
        return StoredToken(record)

    def authenticate_user(self, refresh_token: "StoredToken"):
        with self.provider.db.session() as s:
            user = users.get(s, refresh_token.record.user_id)
            if user is None or user.disabled:
                raise errors.InvalidGrantError("The user can no longer be authenticated")
            s.expunge(user)
            return user

    def issue_token(self, user, refresh_token: "StoredToken"):
        record = refresh_token.record
        # RFC 8705 §3: a refreshed access token is bound to the certificate of this request.
        x5t_s256 = binding_for(self.request.client, self.request)
        with self.provider.db.session() as s:
            if not token_repo.mark_rotated(s, record.id):
                # Another request rotated it first: the same token was used twice.
                token_repo.revoke_grant(s, record.grant_id)
                s.commit()
                raise errors.InvalidGrantError()
        scope = self.request.payload.scope or record.scope
        if "offline_access" not in scope.split():
            scope += " offline_access"  # a narrowed refresh keeps the rotation chain alive
        grant = Grant(grant_id=record.grant_id, client_id=record.client_id, user=user,
                      scope=scope, auth_time=record.auth_time, acr=record.acr, x5t_s256=x5t_s256)
        return self.provider.tokens.issue(grant, self.request.client, event="token_refreshed")

    def revoke_old_credential(self, refresh_token) -> None:
        return None  # rotated atomically in issue_token


class StoredToken:
    """Authlib's TokenMixin view of a stored token record."""

    def __init__(self, record) -> None:
        self.record = record

    def check_client(self, client) -> bool:
        return client.get_client_id() == self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.record.revoked

    def get_user(self):
        return None

    def get_client(self):
        return None


def _first_acr(acr_values: str | None) -> str | None:
    return acr_values.split()[0] if acr_values else None
