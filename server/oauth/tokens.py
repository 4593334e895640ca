"""Token issuance: JWT access tokens (RFC 9068), ID tokens (OIDC Core §2, CIBA §10.1.1 / §10.3.1),
refresh tokens with rotation, and the verification of our own access tokens.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError

from ..clock import Clock
from ..config import Settings
from ..security import digest, new_id
from ..storage import Database, tokens as token_repo
from ..storage.models import Token, User
from .clients import RegisteredClient
from .keys import KeyRing

ACCESS_TOKEN_TYP = "at+jwt"


@dataclass
class Grant:
    """What a token response is issued for: one CIBA request, or a refreshed grant."""

    grant_id: str
    client_id: str
    user: User
    scope: str
    auth_time: float | None
    acr: str | None = None
    auth_req_id: str | None = None  # only for the push mode ID token claim


class TokenIssuer:
    def __init__(self, settings: Settings, clock: Clock, db: Database, keys: KeyRing,
                 issuer: str) -> None:
        self.settings, self.clock, self.db, self.keys, self.issuer = settings, clock, db, keys, issuer

    @property
    def audience(self) -> str:
        """Default resource indicator for the access token's aud (RFC 9068 §3)."""
        return self.settings.extra.get("access_token_audience") or self.issuer

    def issue(self, grant: Grant, client: RegisteredClient, include_id_token: bool = True) -> dict:
        """Build the token response and record it (RFC 6749 §5.1)."""
        response, record = self.build(grant, client, include_id_token)
        with self.db.session() as s:
            token_repo.add(s, record)
        return response

    def build(self, grant: Grant, client: RegisteredClient,
              include_id_token: bool = True) -> tuple[dict, Token]:
        """The signed token response and the record to store with it, in the caller's
        transaction. A refresh token only when offline_access was granted and the client may
        use the refresh_token grant."""
        id_token_alg = client.row.id_token_signed_response_alg or self.settings.id_token_signing_alg
        now = self.clock.now_int()
        jti = new_id(24)
        access_token = jwt.encode(
            {"alg": self.settings.access_token_signing_alg, "typ": ACCESS_TOKEN_TYP,
             "kid": self._kid(self.settings.access_token_signing_alg)},
            {"iss": self.issuer, "sub": grant.user.id, "aud": self.audience,
             "client_id": grant.client_id, "iat": now, "exp": now + self.settings.access_token_lifetime,
             "jti": jti, "scope": grant.scope,
             **({"auth_time": int(grant.auth_time)} if grant.auth_time else {}),
             **({"acr": grant.acr} if grant.acr else {})},
            self.keys.signing_key(self.settings.access_token_signing_alg),
            algorithms=[self.settings.access_token_signing_alg])
        response: dict = {"access_token": access_token, "token_type": "Bearer",
                          "expires_in": self.settings.access_token_lifetime, "scope": grant.scope}
        refresh_token = None
        if "offline_access" in grant.scope.split() and client.check_grant_type("refresh_token"):
            refresh_token = new_id(32)
            response["refresh_token"] = refresh_token
        if include_id_token and "openid" in grant.scope.split():
            response["id_token"] = self._id_token(grant, now, id_token_alg, access_token,
                                                  refresh_token)
        record = Token(
            id=uuid.uuid4().hex, grant_id=grant.grant_id, client_id=grant.client_id,
            user_id=grant.user.id, scope=grant.scope, access_jti=jti,
            access_expires_at=now + self.settings.access_token_lifetime,
            refresh_token_hash=digest(refresh_token) if refresh_token else None,
            refresh_expires_at=(now + self.settings.refresh_token_lifetime)
            if refresh_token else None,
            auth_time=grant.auth_time, acr=grant.acr, created_at=now)
        return response, record

    def _id_token(self, grant: Grant, now: int, alg: str, access_token: str,
                  refresh_token: str | None) -> str:
        claims = {"iss": self.issuer, "sub": grant.user.id, "aud": grant.client_id,
                  "iat": now, "exp": now + self.settings.id_token_lifetime,
                  "at_hash": _half_hash(access_token, alg)}
        if grant.auth_time:
            claims["auth_time"] = int(grant.auth_time)
        if grant.acr:
            claims["acr"] = grant.acr
        if grant.auth_req_id:
            # CIBA §10.3.1: in push mode the ID token binds the auth_req_id and refresh token.
            claims["urn:openid:params:jwt:claim:auth_req_id"] = grant.auth_req_id
            if refresh_token:
                claims["urn:openid:params:jwt:claim:rt_hash"] = _half_hash(refresh_token, alg)
        # An explicit list: joserfc refuses PS256 by default ("not recommended").
        return jwt.encode({"alg": alg, "kid": self._kid(alg)}, claims, self.keys.signing_key(alg),
                          algorithms=[alg])

    def _kid(self, alg: str) -> str:
        return self.keys.signing_key(alg).kid

    def verify_access_token(self, token: str) -> tuple[dict, Token] | None:
        """Claims and record of a valid, unexpired, unrevoked access token of ours; else None."""
        try:
            decoded = jwt.decode(token, self.keys.public_keyset(),
                                 algorithms=list(KeyRingAlgs))
        except (JoseError, ValueError, TypeError):
            return None
        if decoded.header.get("typ") != ACCESS_TOKEN_TYP:
            return None
        claims = decoded.claims
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int) \
                or claims["exp"] <= self.clock.now():
            return None
        with self.db.session() as s:
            record = token_repo.by_access_jti(s, str(claims.get("jti")))
        if record is None or record.revoked:
            return None
        return claims, record


KeyRingAlgs = ("RS256", "PS256", "ES256")


def _half_hash(value: str, alg: str) -> str:
    """at_hash / rt_hash: left half of the SHA-256 digest, base64url (OIDC Core §3.1.3.6)."""
    half = hashlib.sha256(value.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode()
