"""Repository of passkeys (WebAuthn credentials)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import Passkey


def add(s: Session, row: Passkey) -> None:
    s.add(row)
    s.flush()


def get(s: Session, credential_id: str) -> Passkey | None:
    return s.get(Passkey, credential_id)


def for_user(s: Session, user_id: str) -> list[Passkey]:
    return list(s.scalars(select(Passkey).where(Passkey.user_id == user_id)
                          .order_by(Passkey.created_at)))


def used(s: Session, credential_id: str, old_count: int, new_count: int, now: float) -> bool:
    """Record a sign-in; False if another sign-in with this credential got there first (the
    signature counter must keep rising: a clone or a replay would not)."""
    result = s.execute(update(Passkey).where(Passkey.id == credential_id,
                                             Passkey.sign_count == old_count)
                       .values(sign_count=new_count, last_used_at=now))
    return result.rowcount == 1


def remove(s: Session, user_id: str, credential_id: str) -> Passkey | None:
    row = s.get(Passkey, credential_id)
    if row is None or row.user_id != user_id:
        return None
    s.delete(row)
    return row
