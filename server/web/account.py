"""The signed-in user's account pages. Device management lives in web/devices_pages.py."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, redirect, render_template, request, url_for

from .session import check_csrf, csrf_token, login_required, sign_in, sign_out, signed_in_user

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        check_csrf()
        if sign_in(request.form.get("username", ""), request.form.get("password", ""), "account"):
            return redirect(_safe_next(request.args.get("next")))
        error = "That username and password do not match."
    return render_template("login.html", error=error, csrf_token=csrf_token(),
                           next_url=_safe_next(request.args.get("next"))), 401 if error else 200


@bp.post("/logout")
def logout():
    """A POST with the CSRF token, so that no other site can sign a person out."""
    check_csrf()
    sign_out()
    return redirect(url_for("account.login"))


@bp.app_context_processor
def csrf_for_templates() -> dict:
    """Every page's forms (the sign-out button in the top bar included) carry the token."""
    return {"csrf_token": csrf_token()}


@bp.get("/")
@login_required
def home():
    return render_template("account.html", user=signed_in_user(), csrf_token=csrf_token())


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form is no open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("account.home")
