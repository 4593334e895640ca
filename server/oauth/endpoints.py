"""Token introspection (RFC 7662) and revocation (RFC 7009) on Authlib's endpoint classes."""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint as _Revocation
from authlib.oauth2.rfc6749.errors import UnsupportedTokenTypeError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _Introspection

from ..security import digest
from ..storage import tokens as token_repo
from .clients import AUTH_METHODS
from .grant import StoredToken


class _Lookup:
    """Finds a token of ours: a JWT access token by its jti, a refresh token by its digest."""

    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def check_params(self, request, client) -> None:
        # RFC 7009 §2.2.1 / RFC 6749 §5.2: unsupported_token_type is a 400, not Authlib's 401.
        try:
            super().check_params(request, client)
        except UnsupportedTokenTypeError as exc:
            exc.status_code = 400
            raise

    def query_token(self, token_string: str, token_type_hint: str | None):
        # The hint only orders the search (RFC 7662 §2.1, RFC 7009 §2.1).
        p = self.server.provider
        if token_string.count(".") == 2:
            found = p.tokens.verify_access_token(token_string)
            if found:
                claims, record = found
                return AccessToken(record, claims)
        with p.db.session() as s:
            record = token_repo.by_refresh_hash(s, digest(token_string))
        if record is None:
            return None
        return RefreshToken(record)


class AccessToken(StoredToken):
    def __init__(self, record, claims: dict) -> None:
        super().__init__(record)
        self.claims = claims


class RefreshToken(StoredToken):
    pass


class IntrospectionEndpoint(_Lookup, _Introspection):
    def check_permission(self, token, client, request) -> bool:
        # Resource servers introspect tokens issued to other clients; any authenticated client may.
        return True

    def introspect_token(self, token) -> dict:
        p = self.server.provider
        r = token.record
        now = p.clock.now()
        if r.revoked:
            return {"active": False}
        if isinstance(token, AccessToken):
            data = dict(token.claims)
            data.update(active=True, token_type="Bearer")
            return data
        if r.rotated or (r.refresh_expires_at or 0) <= now:
            return {"active": False}
        return {"active": True, "token_type": "refresh_token", "scope": r.scope,
                "client_id": r.client_id, "sub": r.user_id, "iss": p.issuer,
                "exp": int(r.refresh_expires_at), "iat": int(r.created_at)}


class RevocationEndpoint(_Lookup, _Revocation):
    def revoke_token(self, token, request) -> None:
        # RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the grant's access tokens.
        with self.server.provider.db.session() as s:
            if isinstance(token, RefreshToken):
                token_repo.revoke_grant(s, token.record.grant_id)
            else:
                row = token_repo.by_access_jti(s, token.record.access_jti)
                if row is not None:
                    row.revoked = True
