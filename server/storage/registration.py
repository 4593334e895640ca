"""Repository of initial access tokens (RFC 7591 §3) and registration access tokens (RFC 7592)."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .models import Client, InitialAccessToken


def add_token(s: Session, row: InitialAccessToken) -> None:
    s.add(row)
    s.flush()


def usable(s: Session, token_hash: str, now: float) -> InitialAccessToken | None:
    """The token if it may register a client now (unexpired, unrevoked, unused if single-use)."""
    return s.scalar(select(InitialAccessToken).where(*_usable(token_hash, now)))


def _usable(token_hash: str, now: float) -> tuple:
    return (InitialAccessToken.token_hash == token_hash, InitialAccessToken.revoked_at.is_(None),
            InitialAccessToken.expires_at > now,
            or_(InitialAccessToken.single_use.is_(False), InitialAccessToken.used_count == 0))


def use(s: Session, token_hash: str, now: float) -> bool:
    """Count one use, atomically: of two registrations racing on a single-use token, one wins."""
    result = s.execute(update(InitialAccessToken).where(*_usable(token_hash, now)).values(
        used_count=InitialAccessToken.used_count + 1, last_used_at=now))
    return result.rowcount == 1


def give_back(s: Session, token_id: str) -> None:
    """Undo ``use`` when the registration could not be stored after all."""
    s.execute(update(InitialAccessToken).where(InitialAccessToken.id == token_id).values(
        used_count=InitialAccessToken.used_count - 1))


def all_tokens(s: Session) -> list[InitialAccessToken]:
    return list(s.scalars(select(InitialAccessToken).order_by(InitialAccessToken.created_at.desc())))


def revoke(s: Session, token_id: str, now: float) -> InitialAccessToken | None:
    row = s.get(InitialAccessToken, token_id)
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = now
    return row


def self_registered(s: Session, client_id: str) -> Client | None:
    """A client that registered itself (only those have a registration access token)."""
    row = s.get(Client, client_id)
    return row if row is not None and row.registration_token_hash else None


def set_registration_token(s: Session, client_id: str, token_hash: str) -> None:
    s.execute(update(Client).where(Client.client_id == client_id).values(
        registration_token_hash=token_hash))
