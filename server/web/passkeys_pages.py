"""HTTP glue for passkeys: JSON calls made by static/passkeys.js (each with the session's CSRF
token in X-CSRF-Token), and the remove button on the account page.

- POST /account/passkeys/register/options, POST /account/passkeys/register (signed in)
- POST /account/passkeys/signin/options, POST /account/passkeys/signin (anyone; a success
  starts a fresh session, as a password sign-in does)
- POST /account/passkeys/<id>/remove (form)

The challenge of each ceremony waits in the session until the answer comes; it is used once.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, request, session, url_for

from .. import audit
from ..storage import passkeys as passkey_repo
from ..storage.models import User
from .context import current_provider
from .forms import json_or_none
from .session import check_csrf, login_required, signed_in_user, start_session

if TYPE_CHECKING:
    from ..passkeys import Passkeys

bp = Blueprint("passkeys", __name__, url_prefix="/account/passkeys")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(lambda: {"passkey_panel": panel})


def _passkeys() -> "Passkeys":
    """The provider's Passkeys (made on first use: Provider.passkeys)."""
    return current_provider().passkeys


def _error() -> type[Exception]:
    """PasskeyError: a ceremony that did not verify; its message is meant for the person."""
    from ..passkeys import PasskeyError

    return PasskeyError


def panel(user: User) -> dict:
    """The account page's passkey list (read without loading py_webauthn)."""
    p = current_provider()
    with p.db.session() as s:
        rows = passkey_repo.for_user(s, user.id)
        s.expunge_all()
    return {"passkeys": rows}


def _json_answer(body: dict, status: int = 200):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _challenge(name: str, value: bytes | None = None) -> bytes | None:
    """Keep (with ``value``) or take back, once, the challenge of a ceremony."""
    key = "webauthn_" + name
    if value is not None:
        session[key] = base64.urlsafe_b64encode(value).decode()
        return value
    kept = session.pop(key, None)
    return base64.urlsafe_b64decode(kept) if isinstance(kept, str) else None


def _credential() -> dict:
    body = json_or_none(request, current_provider().settings.json_max_depth)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        abort(400, "The request must be JSON with a credential.")
    return body


@bp.post("/register/options")
@login_required
def register_options():
    check_csrf()
    options, challenge = _passkeys().registration_options(signed_in_user())
    _challenge("register", challenge)
    return _json_answer(options)


@bp.post("/register")
@login_required
def register():
    check_csrf()
    body = _credential()
    challenge = _challenge("register")
    if challenge is None:
        return _json_answer({"error": "Start again: the page asked for no passkey."}, 400)
    try:
        row = _passkeys().register(signed_in_user(), body["credential"], challenge,
                                   str(body.get("name", "")))
    except _error() as exc:
        return _json_answer({"error": str(exc)}, 400)
    flash(f"Passkey “{row.name}” added: you can sign in with it instead of your password.")
    return _json_answer({"id": row.id, "name": row.name}, 201)


@bp.post("/signin/options")
def signin_options():
    check_csrf()
    options, challenge = _passkeys().authentication_options()
    _challenge("signin", challenge)
    return _json_answer(options)


@bp.post("/signin")
def signin():
    check_csrf()
    body = _credential()
    challenge = _challenge("signin")
    page = str(body.get("page", "account"))[:20]
    if challenge is None:
        return _json_answer({"error": "Start again: the page asked for no passkey."}, 400)
    try:
        user = _passkeys().authenticate(body["credential"], challenge)
    except _error() as exc:
        audit.record(current_provider(), "sign_in_failed", "anonymous", method="passkey",
                     page=page)
        return _json_answer({"error": str(exc)}, 401)
    start_session(user, "passkey", page)
    return _json_answer({"username": user.username})


@bp.post("/<path:credential_id>/remove")
@login_required
def remove(credential_id: str):
    check_csrf()
    if not _passkeys().remove(signed_in_user(), credential_id):
        abort(404, "No such passkey.")
    flash("The passkey was removed.")
    return redirect(url_for("account.home"))
