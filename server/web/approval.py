"""The console channel's approval page: the one-time link the provider logs for a request.

The person signs in with their password, sees the client's name, the binding message and the
requested scopes, and presses Accept or Deny (CSRF-protected). Expired or already decided
requests say so plainly.
"""

from __future__ import annotations

import json

from flask import Blueprint, render_template, request

from ..oauth import request_ids
from ..oauth.decisions import Outcome, decide, state_of
from ..storage import ciba_requests, clients
from .context import current_provider
from .session import check_csrf, csrf_token, sign_in, signed_in_user

bp = Blueprint("approval", __name__)


def _load(token: str):
    p = current_provider()
    with p.db.session() as s:
        req = ciba_requests.by_approval_token_hash(s, request_ids.key(token))
        client = clients.get(s, req.client_id) if req else None
    return req, client


@bp.route("/approve/<token>", methods=["GET", "POST"])
def approve(token: str):
    p = current_provider()
    req, client = _load(token)
    if req is None:
        return render_template("approve.html", state="unknown"), 404
    now = p.clock.now()
    lifetime_end = min(req.expires_at, req.created_at + p.settings.approval_link_lifetime)
    state = state_of(req, now)
    if state == "pending" and lifetime_end <= now:
        state = "expired"
    user = signed_in_user()
    error = None
    if request.method == "POST":
        check_csrf()
        if request.form.get("action") == "sign_in":
            user = sign_in(request.form.get("username", ""), request.form.get("password", ""),
                           "approval")
            if user is None:
                error = "That username and password do not match."
        elif user is not None and user.id == req.user_id and state == "pending":
            action = request.form.get("action")
            if action in ("accept", "deny"):
                outcome = decide(p, req.id, action == "accept", "console")
                state = {Outcome.APPROVED: "approved", Outcome.DENIED: "denied",
                         Outcome.EXPIRED: "expired"}.get(outcome, "decided")
                if outcome is Outcome.ALREADY_DECIDED:
                    state = state_of(_load(token)[0], now)
    if user is not None and user.id != req.user_id:
        return render_template("approve.html", state="wrong_user", user=user,
                               csrf_token=csrf_token()), 403
    if state in ("approved", "denied", "cancelled", "exchanged"):
        state = {"exchanged": "approved"}.get(state, state)
    details = json.loads(req.authorization_details) if req.authorization_details else None
    status = 401 if error else 200
    return render_template(
        "approve.html", state=state if user else ("sign_in" if state == "pending" else state),
        user=user, error=error, csrf_token=csrf_token(),
        client_name=(client.name or client.client_id) if client else "Unknown client",
        binding_message=req.binding_message,
        scopes=[(s_, p.describe_scope(s_)) for s_ in req.scope.split()],
        authorization_details=details, expires_at=int(req.expires_at)), status
