"""Automated approval for the OpenID conformance suite: exists only when
CIBA_AUTOMATED_APPROVAL_TOKEN is set (never by default; a warning is logged at start)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..oauth import errors
from ..oauth.decisions import Outcome, decide
from ..security import digest, equal
from ..storage import ciba_requests
from .context import current_provider
from .forms import strict_form

bp = Blueprint("testing", __name__)


@bp.post("/testing/ciba-approval")
def ciba_approval():
    p = current_provider()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not equal(token.strip(), p.settings.automated_approval_token):
        response = jsonify(error="invalid_token", error_description="Bearer token required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    form = strict_form(request)
    action = form.get("action")
    if not form.get("auth_req_id") or action not in ("allow", "deny"):
        raise errors.InvalidRequestError("auth_req_id and action=allow|deny are required")
    req = ciba_requests.find_by_hash(p.db, digest(form["auth_req_id"]))
    if req is None:
        raise errors.InvalidRequestError("Unknown auth_req_id")
    outcome = decide(p, req.id, action == "allow", "testing")
    status = {Outcome.APPROVED: 200, Outcome.DENIED: 200, Outcome.EXPIRED: 410}.get(outcome, 409)
    response = jsonify(status=outcome.value)
    response.status_code = status
    return response
