"""Console: "I didn't request this" reports (/admin/reports), newest first: people told the
provider from their device that a sign-in request was not theirs (server/devices/reports.py).
Each is also in the audit log (event ``request_reported``)."""

from __future__ import annotations

from flask import Blueprint

from ..storage import reports
from .context import current_provider
from .operator import operator_required, page

bp = Blueprint("admin_reports", __name__, url_prefix="/admin/reports")

LIMIT = 200


@bp.get("/")
@operator_required
def index():
    p = current_provider()
    with p.db.session() as s:
        rows = reports.recent(s, limit=LIMIT)
        s.expunge_all()
    return page("admin_reports.html", reports=rows, limit=LIMIT)
