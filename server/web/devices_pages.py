"""Account pages for devices: the list with revoke buttons (/account/devices) and "Enroll a
device" (/account/devices/enroll) showing the QR code and the same link to copy."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from ..devices import qr
from ..devices.service import DeviceService
from .context import current_provider
from .session import check_csrf, csrf_token, login_required, signed_in_user

bp = Blueprint("devices_pages", __name__, url_prefix="/account/devices")


@bp.app_template_filter("device_time")
def device_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _service() -> DeviceService:
    return current_provider().devices


@bp.get("/")
@login_required
def index():
    user = signed_in_user()
    devices = _service().devices_of(user.id, include_revoked=True)
    return render_template("devices.html", user=user, devices=devices, csrf_token=csrf_token())


@bp.get("/enroll")
@login_required
def enroll():
    """A fresh one-time code on every visit (bound to this user, short-lived, single use)."""
    user = signed_in_user()
    offer = _service().new_enrollment(user.id)
    lifetime = int(offer.expires_at - current_provider().clock.now())
    body = render_template("device_enroll.html", user=user, offer=offer,
                           qr_data_uri=qr.png_data_uri(offer.uri),
                           minutes=max(1, round(lifetime / 60)))
    return body, 200, {"Cache-Control": "no-store"}


@bp.post("/<device_id>/revoke")
@login_required
def revoke(device_id: str):
    check_csrf()
    user = signed_in_user()
    if not _service().revoke(device_id, user_id=user.id, actor="user:" + user.username):
        abort(404, "No such active device.")
    flash("The device was revoked; it can no longer approve sign-ins.")
    return redirect(url_for("devices_pages.index"))
