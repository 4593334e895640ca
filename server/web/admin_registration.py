"""Console: initial access tokens for dynamic client registration (/admin/registration): the
list (label, expiry, uses, who made it), a form that makes one and shows it once, and revoke."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for

from ..admin import AdminError
from ..registration import issue_initial_token, list_initial_tokens, revoke_initial_token
from .context import current_provider
from .operator import actor, operator_required, page

bp = Blueprint("admin_registration", __name__, url_prefix="/admin/registration")

#: Lifetimes offered by the form, in hours.
LIFETIMES = (1, 24, 24 * 7, 24 * 30)


@bp.get("/")
@operator_required
def index():
    p = current_provider()
    return page("admin_registration.html", tokens=list_initial_tokens(p), now=p.clock.now(),
                endpoint=p.endpoint("/register"), lifetimes=LIFETIMES, token=None)


@bp.post("/")
@operator_required
def create():
    p = current_provider()
    hours = request.form.get("hours", "24")
    try:
        if not hours.isdigit() or int(hours) not in LIFETIMES:
            raise AdminError("choose one of the offered lifetimes")
        token, row = issue_initial_token(p, request.form.get("label", ""), int(hours) * 3600,
                                         request.form.get("single_use") == "on", actor())
    except AdminError as exc:
        flash(f"Not made: {exc}")
        return redirect(url_for("admin_registration.index"))
    return page("admin_registration.html", tokens=list_initial_tokens(p), now=p.clock.now(),
                endpoint=p.endpoint("/register"), lifetimes=LIFETIMES, token=token, made=row)


@bp.post("/<token_id>/revoke")
@operator_required
def revoke(token_id: str):
    try:
        revoke_initial_token(current_provider(), token_id, actor())
        flash("The registration token was revoked; clients it registered stay registered.")
    except AdminError as exc:
        flash(str(exc))
    return redirect(url_for("admin_registration.index"))
