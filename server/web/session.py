"""Browser sessions for people: password sign-in (limited by the sign-in guard), the signed-in
user, CSRF tokens, and the audit records of sign-ins and sign-outs."""

from __future__ import annotations

import secrets
from functools import wraps

from flask import abort, redirect, request, session, url_for

from .. import audit
from ..security import equal, verify_password
from ..storage import users
from ..storage.models import User
from .context import current_provider


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "") or request.headers.get("X-CSRF-Token", "")
    if not sent or not equal(sent, session.get("csrf", "")):
        abort(400, "The form expired or did not come from this site. Reload the page and try again.")


def sign_in(username: str, password: str, page: str = "account") -> User | None:
    """Checks the password in constant time (argon2id runs even for unknown usernames and while
    the guard holds the account or address back, so neither shows in the answer or its timing);
    a hash of an older scheme or weaker parameters is replaced on success."""
    p = current_provider()
    address = request.remote_addr
    with p.db.session() as s:
        user = users.by_username_or_email(s, username.strip())
    # Unknown names count against the address only: nothing to protect, no row to keep.
    account = user.id if user is not None else None
    held = p.signin_guard.blocked(account, address)
    ok, new_hash = verify_password(password, user.password_hash if user else None)
    if held or not ok or user is None or user.disabled:
        locked = [] if held else p.signin_guard.failed(account, address)
        audit.record(p, "sign_in_failed", "anonymous", user_id=account, page=page,
                     known_user=user is not None, held_back=held)
        for kind in locked:
            audit.record(p, "sign_in_locked", "anonymous", user_id=account if kind == "account"
                         else None, kind=kind, page=page, minutes=p.settings.signin_lockout // 60)
        return None
    if new_hash:
        with p.db.session() as s:
            users.set_password_hash(s, user.id, new_hash)
    p.signin_guard.succeeded(account)
    start_session(user, "password", page)
    return user


def start_session(user: User, method: str, page: str) -> None:
    """A fresh session for ``user`` (no fixation), audited as a sign-in by ``method``."""
    session.clear()
    session["user_id"] = user.id
    csrf_token()
    audit.record(current_provider(), "sign_in", "user:" + user.username, user_id=user.id,
                 method=method, page=page)


def sign_out() -> None:
    user = signed_in_user()
    session.clear()
    if user is not None:
        audit.record(current_provider(), "sign_out", "user:" + user.username, user_id=user.id)


def signed_in_user() -> User | None:
    user_id = session.get("user_id")
    if not user_id:
        return None
    with current_provider().db.session() as s:
        user = users.get(s, user_id)
    return user if user and not user.disabled else None


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if signed_in_user() is None:
            return redirect(url_for("account.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper
