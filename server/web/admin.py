"""The operator page (/admin), for users with ``is_admin``: the Gotify channel (URL, health,
recent delivery failures, newest first), "I didn't request this" reports from devices, users
with their notification modes and device counts, and the registered clients. Read-only; operators change things with ``ciba-provider``."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from ..notify import modes
from ..storage import clients, notifications, reports, users
from .context import current_provider
from .notifications import LABELS
from .session import login_required, signed_in_user

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@login_required
def index():
    me = signed_in_user()
    if not me.is_admin:
        abort(403, "This page is for operators.")
    p = current_provider()
    gotify = getattr(p, "gotify", None)
    with p.db.session() as s:
        counts = notifications.active_device_counts(s)
        people = users.all_users(s)
        failures = notifications.recent_failures(s, limit=50)
        registered = clients.all_clients(s)
        reported = reports.recent(s)
        s.expunge_all()
    rows = [{"user": u, "mode": u.notification_mode or modes.AUTO,
             "effective": modes.effective(p, u), "devices": counts.get(u.id, 0)} for u in people]
    body = render_template("admin.html", user=me, gotify=gotify,
                           gotify_health=gotify.health() if gotify else None, failures=failures,
                           rows=rows, clients=registered, labels=LABELS,
                           reports=reported)
    return body, 200, {"Cache-Control": "no-store"}
