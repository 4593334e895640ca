"""Console: /admin/deliveries: ping and push notifications that finally failed (CIBA §10.2,
§10.3), and how many are still being retried, for operators (``is_admin``). Read-only; a page
of the operators' console (registered by web/admin.py's ``init_app``)."""

from __future__ import annotations

from flask import Blueprint

from ..storage import outbox as outbox_repo
from .context import current_provider
from .operator import operator_required, page

bp = Blueprint("deliveries", __name__, url_prefix="/admin")


@bp.get("/deliveries")
@operator_required
def failed_deliveries():
    p = current_provider()
    with p.db.session() as s:
        failures = outbox_repo.failed(s, limit=100)
        pending = outbox_repo.pending_count(s)
        s.expunge_all()
    return page("admin_deliveries.html", failures=failures, pending=pending)
