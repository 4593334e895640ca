"""Issued token records: for introspection, revocation, refresh rotation and replay revocation."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import prepared
from .models import Token

#: One token record by a prepared statement (the token endpoint), in the caller's transaction.
INSERT = prepared.inserting(Token.__table__)


def add(s: Session, token: Token) -> Token:
    s.add(token)
    s.flush()
    return token


def by_access_jti(s: Session, jti: str) -> Token | None:
    return s.scalar(select(Token).where(Token.access_jti == jti))


def by_refresh_hash(s: Session, refresh_hash: str) -> Token | None:
    return s.scalar(select(Token).where(Token.refresh_token_hash == refresh_hash))


def revoke_grant(s: Session, grant_id: str) -> None:
    s.execute(update(Token).where(Token.grant_id == grant_id).values(revoked=True))


def mark_rotated(s: Session, token_id: str) -> bool:
    result = s.execute(update(Token).where(Token.id == token_id, Token.rotated.is_(False),
                                           Token.revoked.is_(False)).values(rotated=True))
    return result.rowcount == 1


def revoke_user(s: Session, user_id: str) -> int:
    """Revoke every token of a user (when an operator disables them); how many were live."""
    return s.execute(update(Token).where(Token.user_id == user_id, Token.revoked.is_(False))
                     .values(revoked=True)).rowcount
