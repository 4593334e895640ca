"""Signing key repository (private JWKs never leave the database except to sign)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import SigningKey


def add(s: Session, key: SigningKey) -> None:
    s.add(key)
    s.flush()


def published(s: Session) -> list[SigningKey]:
    """Every key whose public half is in the JWKS: the latest to start signing first."""
    return list(s.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))
                          .order_by(SigningKey.active_from.desc(), SigningKey.created_at.desc())))


def retire(s: Session, kid: str, now: float) -> None:
    key = s.get(SigningKey, kid)
    if key is not None:
        key.retired_at = now
