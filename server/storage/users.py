"""User repository."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, String, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from .models import User


class DuplicateUser(ValueError):
    pass


def add(s: Session, username: str, password_hash: str, *, name: str = "", email: str | None = None,
        now: float) -> User:
    clash = s.scalar(select(User).where(or_(User.username == username,
                                           User.email == email if email else False)))
    if clash is not None:
        raise DuplicateUser(f"a user with username or email {username!r}/{email!r} exists")
    user = User(id=uuid.uuid4().hex, username=username, email=email or None, name=name or username,
                password_hash=password_hash, created_at=now)
    s.add(user)
    s.flush()
    return user


def get(s: Session, user_id: str) -> User | None:
    return s.get(User, user_id)


def by_username(s: Session, username: str) -> User | None:
    return s.scalar(select(User).where(User.username == username))


#: The user a login hint names: its username, or its email case-insensitively (two index
#: searches: the unique username and ``ix_users_email_lower``, migration 0008). Parameters:
#: ``hint_params(hint)``.
BY_HINT: Select = select(User).where(or_(
    User.username == bindparam("hint", type_=String()),
    func.lower(User.email) == bindparam("hint_lower", type_=String()))
).limit(1)


def hint_params(hint: str) -> dict[str, str]:
    return {"hint": hint, "hint_lower": hint.lower()}


def by_username_or_email(s: Session, hint: str) -> User | None:
    return s.scalar(BY_HINT, hint_params(hint))


def all_users(s: Session) -> list[User]:
    return list(s.scalars(select(User).order_by(User.username)))


def set_admin(s: Session, user: User, is_admin: bool) -> None:
    user.is_admin = is_admin


def set_notification_mode(s: Session, user: User, mode: str) -> None:
    user.notification_mode = mode


def set_password_hash(s: Session, user_id: str, password_hash: str) -> None:
    """Replace a hash after a successful sign-in (an older scheme or weaker parameters)."""
    s.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))
