"""The operators' console (/admin, users with ``is_admin``). This page is its overview: the
Gotify channel (URL, health, recent delivery failures), users with their notification modes and
device counts, clients, how many requests are waiting and how many were reported as not
requested, and the signing keys (rotate). The other sections are their own modules:
admin_clients, admin_users, admin_requests, admin_reports, deliveries, admin_audit,
admin_registration; ``init_app`` registers them all."""

from __future__ import annotations

from flask import Blueprint, Flask, flash, redirect, request, url_for

from .. import audit
from ..notify import modes
from ..storage import clients, console, notifications, reports, users
from .context import current_provider
from .notifications import LABELS
from .operator import actor, operator_required, page

bp = Blueprint("admin", __name__, url_prefix="/admin")


def init_app(app: Flask) -> None:
    from . import (admin_audit, admin_clients, admin_registration, admin_reports, admin_requests,
                   admin_users, deliveries)

    app.register_blueprint(bp)
    for module in (admin_clients, admin_users, admin_requests, admin_reports, deliveries,
                   admin_audit, admin_registration):
        app.register_blueprint(module.bp)


@bp.get("/")
@operator_required
def index():
    p = current_provider()
    gotify = getattr(p, "gotify", None)
    with p.db.session() as s:
        counts = notifications.active_device_counts(s)
        people = users.all_users(s)
        failures = notifications.recent_failures(s, limit=50)
        registered = clients.all_clients(s)
        pending = len(console.pending(s, p.clock.now()))
        reported = reports.count(s)
        s.expunge_all()
    rows = [{"user": u, "mode": u.notification_mode or modes.AUTO,
             "effective": modes.effective(p, u), "devices": counts.get(u.id, 0)} for u in people]
    return page("admin.html", gotify=gotify, gotify_health=gotify.health() if gotify else None,
                failures=failures, rows=rows, clients=registered, labels=LABELS,
                pending=pending, reported=reported, keys=p.keys.jwks()["keys"])


@bp.post("/keys/rotate")
@operator_required
def rotate_keys():
    p = current_provider()
    ahead = request.form.get("publish_ahead", "3600")
    seconds = int(ahead) if ahead.isdigit() else 3600
    kids = p.keys.rotate(seconds)
    audit.record(p, "keys_rotated", actor(), kids=kids, publish_ahead=seconds)
    flash(f"Published keys {', '.join(kids)}; they sign from {seconds} s from now.")
    return redirect(url_for("admin.index"))
