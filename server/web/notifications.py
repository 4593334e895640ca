"""The account page's "Notifications" panel: the user's mode, a form to change it, and the
Gotify channel's URL and health when one is configured (POST /account/notifications)."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, redirect, request, url_for

from ..notify import modes
from ..storage.models import User
from .context import current_provider
from .session import check_csrf, login_required, signed_in_user

bp = Blueprint("notifications", __name__, url_prefix="/account/notifications")

LABELS = {"websocket": "Device app (WebSocket)", "gotify": "Device app through Gotify",
          "console": "Console link", "": "Automatic"}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(lambda: {"notification_panel": panel})


def panel(user: User) -> dict:
    """What the panel shows for ``user``: modes on offer, stored and effective mode, Gotify."""
    p = current_provider()
    gotify = p.gotify
    return {"mode": user.notification_mode or "", "effective": modes.effective(p, user),
            "choices": [("", LABELS[""])] + [(m, LABELS[m]) for m in modes.available(p)],
            "labels": LABELS, "gotify": gotify, "gotify_health": gotify.health() if gotify else None}


@bp.post("/")
@login_required
def change():
    check_csrf()
    user = signed_in_user()
    p = current_provider()
    chosen = request.form.get("mode", "")
    if chosen not in ("", modes.AUTO) and chosen not in modes.available(p):
        abort(400, "That notification mode is not available on this provider.")
    modes.set_mode(p, user.username, chosen or modes.AUTO)
    flash(f"Sign-in requests now reach you by: {LABELS[modes.parse(chosen or modes.AUTO)]}.")
    return redirect(url_for("account.home"))
