"""/admin/deliveries: ping and push notifications that finally failed (CIBA §10.2, §10.3), and
how many are still being retried, for operators (``is_admin``). Read-only."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from ..storage import outbox as outbox_repo
from .context import current_provider
from .session import login_required, signed_in_user

bp = Blueprint("deliveries", __name__, url_prefix="/admin")


@bp.get("/deliveries")
@login_required
def failed_deliveries():
    me = signed_in_user()
    if not me.is_admin:
        abort(403, "This page is for operators.")
    p = current_provider()
    with p.db.session() as s:
        failures = outbox_repo.failed(s, limit=100)
        pending = outbox_repo.pending_count(s)
        s.expunge_all()
    body = render_template("admin_deliveries.html", user=me, failures=failures, pending=pending)
    return body, 200, {"Cache-Control": "no-store"}
