"""Console: users (/admin/users): list, create, and one page per user to change their profile,
disable or enable them, reset their password, grant or take the operator flag, choose their
notification mode, see their devices (revoke, enroll a new one) and their recent requests.

Changes go through server/admin.py and server/admin_users.py (shared with the CLI). An operator
cannot disable themselves or drop their own operator flag (the console would lock them out).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, request, url_for

from .. import admin_users as ops
from ..admin import AdminError, add_user
from ..devices import qr
from ..notify import modes
from ..storage import console, notifications, users
from .context import current_provider
from .notifications import LABELS
from .operator import actor, operator_required, page

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


@bp.get("/")
@operator_required
def index():
    p = current_provider()
    with p.db.session() as s:
        counts = notifications.active_device_counts(s)
        people = users.all_users(s)
        s.expunge_all()
    return page("admin_users.html", people=people, counts=counts,
                effective={u.id: modes.effective(p, u) for u in people})


@bp.route("/new", methods=["GET", "POST"])
@operator_required
def create():
    form = request.form
    error = None
    if request.method == "POST":
        try:
            if len(form.get("password", "")) < 8:
                raise AdminError("Password: at least 8 characters")
            user = add_user(current_provider(), form.get("username", "").strip(),
                            form.get("password", ""), form.get("name", "").strip(),
                            form.get("email", "").strip() or None,
                            is_admin=form.get("is_admin") == "on", actor=actor())
        except AdminError as exc:
            error = str(exc)
        else:
            flash(f"User {user.username} was created.")
            return redirect(url_for("admin_users.show", username=user.username))
    return page("admin_user_new.html", 400 if error else 200, error=error, form=form)


def _user(username: str):
    with current_provider().db.session() as s:
        user = users.by_username(s, username)
        if user is None:
            abort(404, "No such user.")
        s.expunge(user)
    return user


@bp.get("/<username>")
@operator_required
def show(username: str):
    p = current_provider()
    user = _user(username)
    with p.db.session() as s:
        recent = console.recent_for_user(s, user.id)
    return page("admin_user.html", person=user, devices=p.devices.devices_of(user.id, True),
                recent=recent, now=p.clock.now(), mode=user.notification_mode or "",
                effective=modes.effective(p, user),
                choices=[("", LABELS[""])] + [(m, LABELS[m]) for m in modes.MODES],
                labels=LABELS)


@bp.post("/<username>/<action>")
@operator_required
def change(username: str, action: str):
    p = current_provider()
    form = request.form
    me = g.operator.username == username
    try:
        if action == "profile":
            ops.update_profile(p, username, form.get("name", ""), form.get("email"), actor())
            flash("The profile was saved.")
        elif action in ("disable", "enable"):
            if me and action == "disable":
                raise AdminError("You cannot disable your own account.")
            ops.set_disabled(p, username, action == "disable", actor())
            flash(f"{username} is {action}d.")
        elif action == "password":
            ops.reset_password(p, username, form.get("password", ""), actor())
            flash(f"The password of {username} was reset.")
        elif action == "operator":
            grant = form.get("is_admin") == "on"
            if me and not grant:
                raise AdminError("You cannot take your own operator flag away.")
            ops.set_admin(p, username, grant, actor())
            flash(f"{username} is {'now' if grant else 'no longer'} an operator.")
        elif action == "mode":
            ops.set_notification_mode(p, username, form.get("mode") or modes.AUTO, actor())
            flash("The notification mode was saved.")
        else:
            abort(404)
    except AdminError as exc:
        flash(f"Not changed: {exc}")
    return redirect(url_for("admin_users.show", username=username))


@bp.post("/<username>/devices/<device_id>/revoke")
@operator_required
def revoke_device(username: str, device_id: str):
    user = _user(username)
    if not current_provider().devices.revoke(device_id, user_id=user.id, actor=actor()):
        abort(404, "No such active device.")
    flash("The device was revoked; it can no longer approve sign-ins.")
    return redirect(url_for("admin_users.show", username=username))


@bp.post("/<username>/devices/enroll")
@operator_required
def enroll_device(username: str):
    """A one-time enrollment QR code for the user (as ``ciba-provider devices enroll``)."""
    p = current_provider()
    user = _user(username)
    offer = p.devices.new_enrollment(user.id)
    minutes = max(1, round((offer.expires_at - p.clock.now()) / 60))
    return page("admin_user_enroll.html", person=user, offer=offer,
                qr_data_uri=qr.png_data_uri(offer.uri), minutes=minutes)
