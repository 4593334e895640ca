"""Browser sessions for people: password sign-in, the signed-in user, CSRF tokens."""

from __future__ import annotations

import secrets
from functools import wraps

from flask import abort, redirect, request, session, url_for

from ..security import equal, verify_password
from ..storage import users
from ..storage.models import User
from .context import current_provider


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not equal(sent, session.get("csrf", "")):
        abort(400, "The form expired or did not come from this site. Reload the page and try again.")


def sign_in(username: str, password: str) -> User | None:
    """Checks the password in constant time (argon2id runs even for unknown usernames); a hash
    of an older scheme or weaker parameters is replaced on success."""
    p = current_provider()
    with p.db.session() as s:
        user = users.by_username_or_email(s, username.strip())
        ok, new_hash = verify_password(password, user.password_hash if user else None)
        if ok and new_hash and user is not None:
            users.set_password_hash(s, user.id, new_hash)
    if not ok or user is None or user.disabled:
        return None
    session.clear()
    session["user_id"] = user.id
    csrf_token()
    return user


def sign_out() -> None:
    session.clear()


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
