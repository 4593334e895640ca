"""Token endpoint grants on Authlib: the CIBA grant (CIBA §10.1, §11) and refresh_token with
rotation (RFC 6749 §6; reuse of a rotated refresh token revokes the whole grant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749 import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant as _RefreshTokenGrant

from ..security import digest
from ..storage import ciba_requests, tokens as token_repo, users
from . import errors
from .clients import AUTH_METHODS, CIBA_GRANT_TYPE
from .decisions import state_of
from .mtls import binding_for
from .tokens import Grant

if TYPE_CHECKING:
    from ..provider import Provider


class CibaGrant(BaseGrant, TokenEndpointMixin):
    """grant_type=urn:openid:params:grant-type:ciba with auth_req_id (CIBA §10.1)."""

    GRANT_TYPE = CIBA_GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    @property
    def provider(self) -> "Provider":
        return self.server.provider

    def validate_token_request(self) -> None:
        auth_req_id = self.request.form.get("auth_req_id")
        client = self.authenticate_token_endpoint_client()
        self.request.client = client
        if not client.check_grant_type(self.GRANT_TYPE):
            raise errors.UnauthorizedClientError(
                "The client is not registered for the CIBA grant type")
        if not auth_req_id:
            raise errors.InvalidRequestError("Missing auth_req_id")
        if client.row.delivery_mode == "push":
            # CIBA §10.3: push mode clients receive tokens at their notification endpoint.
            raise errors.UnauthorizedClientError("Push mode clients do not poll the token endpoint")
        self.request.auth_req_id = auth_req_id
        # RFC 8705 §3: checked before the auth_req_id is used up.
        self.request.x5t_s256 = binding_for(client, self.request)

    def create_token_response(self):
        p = self.provider
        client = self.request.client
        now = p.clock.now()
        # One indexed read; a pending poll writes nothing (polling.py keeps its interval).
        req = ciba_requests.find_by_hash(p.db, digest(self.request.auth_req_id))
        # CIBA §11 invalid_grant: unknown, or issued to another client.
        if req is None or req.client_id != client.client_id:
            raise errors.InvalidGrantError("Unknown auth_req_id")
        state = state_of(req, now)
        if state == "exchanged":
            # A replay of an exchanged auth_req_id: revoke what it produced (RFC 6749 §10.5
            # by analogy with authorization codes) and refuse.
            with p.db.session() as s:
                token_repo.revoke_grant(s, req.id)
            raise errors.InvalidGrantError("auth_req_id was already used")
        if state == "expired" or (state == "approved" and req.expires_at <= now):
            raise errors.ExpiredTokenError("The auth_req_id has expired")
        if state == "denied":
            raise errors.AccessDeniedError("The end-user denied the authorization request")
        if state == "cancelled":
            raise errors.AccessDeniedError("The authentication request was cancelled")
        if state == "pending":
            self._pending(req, now)
        user = p.directory.user(req.user_id)
        if user is None:
            raise errors.InvalidGrantError("Unknown auth_req_id")
        grant = Grant(grant_id=req.id, client_id=client.client_id, user=user,
                      scope=req.scope, auth_time=req.auth_time, acr=_first_acr(req.acr_values),
                      x5t_s256=self.request.x5t_s256)
        token, records = p.tokens.build(grant, client)
        # CIBA §11: single use. The exchange, the token record and its audit commit together; a
        # concurrent poll that lost the race gets invalid_grant and its tokens are dropped.
        with p.db.session() as s:
            if not ciba_requests.mark_exchanged(s, req.id):
                raise errors.InvalidGrantError("auth_req_id was already used")
            p.tokens.store(s, records)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _pending(self, req, now: float) -> None:
        """CIBA §11 authorization_pending, or slow_down when polled faster than the interval;
        after slow_down the interval of this request grows by 5 s (RFC 8628 §3.5)."""
        p = self.provider
        too_fast, _ = p.polls.poll(req.id, now, req.interval, p.settings.slow_down_increment,
                                   req.expires_at)
        if too_fast:
            raise errors.SlowDownError("Polling too fast; wait the interval between requests")
        raise errors.AuthorizationPendingError("The end-user has not yet been authenticated")


class RefreshTokenGrant(_RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def provider(self) -> "Provider":
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
