"""Operator actions on users beyond server/admin.py: the operator flag (is_admin)."""

from __future__ import annotations

from .admin import AdminError
from .provider import Provider
from .storage import notifications, users


def set_admin(p: Provider, username: str, is_admin: bool = True) -> None:
    with p.db.session() as s:
        user = users.by_username(s, username)
        if user is None:
            raise AdminError(f"no user named {username!r}")
        notifications.set_admin(s, user, is_admin)
