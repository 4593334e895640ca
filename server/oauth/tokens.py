"""Token issuance: JWT access tokens (RFC 9068), ID tokens (OIDC Core §2, CIBA §10.1.1 / §10.3.1),
refresh tokens with rotation, and the verification of our own access tokens.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from contextlib import nullcontext
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy.orm import Session

from .. import audit, jsonsafe
from ..clock import Clock
from ..config import Settings
from ..security import digest, new_id, time_stamp
from ..storage import Database, audit as audit_repo, ciba_requests, prepared, tokens as token_repo
from ..storage.models import Token, User
from . import jws_sign
from .clients import RegisteredClient
from .keys import KeyRing

ACCESS_TOKEN_TYP = "at+jwt"
ID_TOKEN_TYP = "JWT"  # the typ joserfc's jwt.encode wrote before jws_sign (kept unchanged)


@dataclass
class Records:
    """What a token response leaves to store: its token record and its audit record, as
    column values for the prepared INSERTs (storage.tokens.INSERT, storage.audit.INSERT)."""

    token: dict
    audit: dict

    def steps(self) -> tuple[tuple[prepared.Prepared, dict], ...]:
        return (token_repo.INSERT, self.token), (audit_repo.INSERT, self.audit)


@dataclass
class Grant:
    """What a token response is issued for: one CIBA request, or a refreshed grant."""

    grant_id: str
    client_id: str
    user: User | None  # None for client_credentials: the client acts for itself
    scope: str
    auth_time: float | None
    acr: str | None = None
    auth_req_id: str | None = None  # only for the push mode ID token claim
    # RFC 8705 §3.1: the SHA-256 thumbprint of the client certificate the token is bound to.
    x5t_s256: str | None = None


class TokenIssuer:
    def __init__(self, settings: Settings, clock: Clock, db: Database, keys: KeyRing,
                 issuer: str) -> None:
        self.settings, self.clock, self.db, self.keys, self.issuer = settings, clock, db, keys, issuer

    @property
    def audience(self) -> str:
        """Default resource indicator for the access token's aud (RFC 9068 §3)."""
        return self.settings.extra.get("access_token_audience") or self.issuer

    def issue(self, grant: Grant, client: RegisteredClient, include_id_token: bool = True,
              session: Session | None = None, event: str = "token_issued") -> dict:
        """Build the token response and record it (RFC 6749 §5.1), in ``session`` when given
        (so the caller's transaction holds both), with the audit record ``event`` (token_issued,
        token_refreshed) in the same transaction."""
        response, records = self.build(grant, client, include_id_token, event)
        with nullcontext(session) if session is not None else self.db.session() as s:
            self.store(s, records)
        return response

    @staticmethod
    def store(s: Session, records: Records) -> None:
        """Write what ``build`` made in the caller's transaction: the token record and its
        audit record, by two prepared INSERTs (no unit of work: the token endpoint is a hot
        path)."""
        prepared.run(s.connection(), *records.steps())

    def build(self, grant: Grant, client: RegisteredClient, include_id_token: bool = True,
              event: str = "token_issued") -> tuple[dict, Records]:
        """The signed token response and the rows to ``store`` with it in the caller's
        transaction (the token record and the audit record ``event``). A refresh token only
        when offline_access was granted to a user and the client may use the refresh_token
        grant."""
        id_token_alg = client.row.id_token_signed_response_alg or self.settings.id_token_signing_alg
        now = self.clock.now_int()
        jti = _new_jti()
        at_alg = self.settings.access_token_signing_alg
        if client.row.fapi_ciba:
            # FAPI 1 Advanced §8.6: PS256 or ES256 only; a FAPI client's tokens follow the
            # algorithm it registered for its ID tokens (PS256 or ES256, checked at registration).
            at_alg = id_token_alg if id_token_alg in ("PS256", "ES256") else "PS256"
        # RFC 9068 §2.2: sub is the user, or the client itself when no user is involved.
        subject = grant.user.id if grant.user is not None else grant.client_id
        access_token = jws_sign.sign(
            self.keys.signing_key(at_alg), at_alg, ACCESS_TOKEN_TYP,
            {"iss": self.issuer, "sub": subject, "aud": self.audience,
             "client_id": grant.client_id, "iat": now, "exp": now + self.settings.access_token_lifetime,
             "jti": jti, "scope": grant.scope,
             **({"auth_time": int(grant.auth_time)} if grant.auth_time else {}),
             **({"acr": grant.acr} if grant.acr else {}),
             # RFC 8705 §3.1: the confirmation claim of a certificate-bound access token.
             **({"cnf": {"x5t#S256": grant.x5t_s256}} if grant.x5t_s256 else {})})
        response: dict = {"access_token": access_token, "token_type": "Bearer",
                          "expires_in": self.settings.access_token_lifetime, "scope": grant.scope}
        refresh_token = None
        if grant.user is not None and "offline_access" in grant.scope.split() \
                and client.check_grant_type("refresh_token"):
            refresh_token = new_id(32)
            response["refresh_token"] = refresh_token
        if include_id_token and grant.user is not None and "openid" in grant.scope.split():
            response["id_token"] = self._id_token(grant, now, id_token_alg, access_token,
                                                  refresh_token)
        record = {
            # Time-ordered, as the jti (``_new_jti``); the record's key grants nothing.
            "id": ciba_requests.new_row_id(), "grant_id": grant.grant_id,
            "client_id": grant.client_id,
            "user_id": grant.user.id if grant.user is not None else None, "scope": grant.scope,
            "access_jti": jti,
            "access_expires_at": now + self.settings.access_token_lifetime,
            "refresh_token_hash": digest(refresh_token) if refresh_token else None,
            "refresh_expires_at": (now + self.settings.refresh_token_lifetime)
            if refresh_token else None,
            "revoked": False, "rotated": False,
            "auth_time": grant.auth_time, "acr": grant.acr, "created_at": now}
        # One audit record per issue, client_credentials included (no user then).
        entry = audit.values(event, "client:" + grant.client_id, now,
                             user_id=grant.user.id if grant.user is not None else None,
                             client_id=grant.client_id, grant=grant.grant_id, scope=grant.scope)
        return response, Records(record, entry)

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
        return jws_sign.sign(self.keys.signing_key(alg), alg, ID_TOKEN_TYP, claims)

    def verify_access_token(self, token: str) -> tuple[dict, Token] | None:
        """Claims and record of a valid, unexpired, unrevoked access token of ours; else None."""
        if not jsonsafe.compact_jws_ok(token, self.settings.json_max_depth):
            return None
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


def _new_jti() -> str:
    """The access token's jti (RFC 7519 §4.1.7, unique): the time in ns, then 160 random bits.
    Its unique index then grows at its right edge, as the token record's key (time-ordered,
    ``ciba_requests.new_row_id``) does: the INSERTs of one group commit share their last
    index pages instead of each dirtying a random page that SQLite writes whole to its log
    (docs/performance.md, round 6). The time says nothing that ``iat`` does not."""
    return time_stamp() + secrets.token_urlsafe(20)


def _half_hash(value: str, alg: str) -> str:
    """at_hash / rt_hash: left half of the SHA-256 digest, base64url (OIDC Core §3.1.3.6)."""
    half = hashlib.sha256(value.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode()
