"""Operator actions on users beyond server/admin.py: the operator flag, disabling, password
resets, profile and notification mode. Shared by the CLI and the console; each change is
written to the audit log (before and after, never a password) in the same transaction."""

from __future__ import annotations

from . import audit
from .admin import AdminError
from .notify import modes
from .provider import Provider
from .security import hash_password
from .oauth.decisions import cancel
from .storage import ciba_requests, tokens, users
from .storage.models import User


def _snapshot(user: User) -> dict:
    return {"name": user.name, "email": user.email, "is_admin": bool(user.is_admin),
            "disabled": bool(user.disabled), "notification_mode": user.notification_mode or "auto"}


def _change(p: Provider, username: str, actor: str | None, apply, event: str = "user_updated",
            **detail) -> User:
    """Load ``username``, ``apply(session, user)`` (which may return more detail for the
    audit record), audit what changed, return the user."""
    with p.db.session() as s:
        user = users.by_username(s, username)
        if user is None:
            raise AdminError(f"no user named {username!r}")
        before = _snapshot(user)
        detail.update(apply(s, user) or {})
        s.flush()
        changes = audit.changes(before, _snapshot(user))
        if changes or event != "user_updated":
            s.add(audit.entry(event, actor or audit.cli_actor(), p.clock.now(), user_id=user.id,
                              username=user.username, changes=changes, **detail))
        s.expunge(user)
    return user


def set_admin(p: Provider, username: str, is_admin: bool = True,
              actor: str | None = None) -> User:
    return _change(p, username, actor,
                   lambda s, u: users.set_admin(s, u, is_admin))


def set_disabled(p: Provider, username: str, disabled: bool, actor: str | None = None) -> User:
    """A disabled user cannot sign in or be asked to approve (access_denied, CIBA §13); their
    tokens are revoked (introspection says inactive) and their pending requests cancelled."""
    def apply(s, user: User) -> dict:
        user.disabled = disabled
        return {"tokens_revoked": tokens.revoke_user(s, user.id)} if disabled else {}

    user = _change(p, username, actor, apply)
    if disabled:
        pending = [r.id for r in ciba_requests.pending_for_user(p.db, user.id, p.clock.now())]
        for request_id in pending:
            cancel(p, request_id, actor or audit.cli_actor())
    return user


def reset_password(p: Provider, username: str, password: str, actor: str | None = None) -> User:
    if len(password) < 8:
        raise AdminError("the new password must have at least 8 characters")

    def apply(s, user: User) -> None:
        user.password_hash = hash_password(password)

    return _change(p, username, actor, apply, event="user_password_reset")


def update_profile(p: Provider, username: str, name: str, email: str | None,
                   actor: str | None = None) -> User:
    email = (email or "").strip() or None

    def apply(s, user: User) -> None:
        other = users.by_username_or_email(s, email) if email else None
        if other is not None and other.id != user.id:
            raise AdminError(f"another user has the email {email!r}")
        user.name, user.email = name.strip() or user.username, email

    return _change(p, username, actor, apply)


def set_notification_mode(p: Provider, username: str, mode: str,
                          actor: str | None = None) -> User:
    try:
        stored = modes.parse(mode)
    except modes.ModeError as exc:
        raise AdminError(str(exc)) from None
    return _change(p, username, actor,
                   lambda s, u: users.set_notification_mode(s, u, stored))
