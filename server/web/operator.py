"""What every console page (/admin/...) shares: only operators (``is_admin``) get in, every
change is a CSRF-checked POST, answers are never cached, and changes are audited as made by
``operator:<username>``."""

from __future__ import annotations

from functools import wraps

from flask import abort, g, render_template

from .session import check_csrf, login_required, signed_in_user


def operator_required(view):
    """Signed in (else the login page) and an operator (else 403); POSTs need the CSRF token."""
    @login_required
    @wraps(view)
    def wrapper(*args, **kwargs):
        from flask import request

        me = signed_in_user()
        if not me.is_admin:
            abort(403, "This page is for operators.")
        if request.method == "POST":
            check_csrf()
        g.operator = me
        return view(*args, **kwargs)

    return wrapper


def actor() -> str:
    return "operator:" + g.operator.username


def page(template: str, status: int = 200, **context):
    """A console page: the operator in the top bar, never stored by caches."""
    body = render_template(template, user=g.operator, **context)
    return body, status, {"Cache-Control": "no-store"}
