"""Console: live requests (/admin/requests): every pending request with its client, user,
binding message and time left; an operator can cancel one (``decisions.cancel``: the client's
next poll gets access_denied, devices withdraw the card, push clients are told)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for

from ..oauth.decisions import Outcome, cancel
from ..storage import console
from .context import current_provider
from .operator import actor, operator_required, page

bp = Blueprint("admin_requests", __name__, url_prefix="/admin/requests")


@bp.get("/")
@operator_required
def index():
    p = current_provider()
    now = p.clock.now()
    with p.db.session() as s:
        rows = console.pending(s, now)
    return page("admin_requests.html", requests=rows, now=now)


@bp.post("/<request_id>/cancel")
@operator_required
def cancel_request(request_id: str):
    outcome = cancel(current_provider(), request_id, actor())
    if outcome is Outcome.NOT_FOUND:
        abort(404, "No such request.")
    flash({Outcome.CANCELLED: "The request was cancelled; the client is told access_denied.",
           Outcome.EXPIRED: "The request had already expired.",
           Outcome.ALREADY_DECIDED: "The request was decided before it could be cancelled."}
          [outcome])
    return redirect(url_for("admin_requests.index"))
