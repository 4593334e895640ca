"""Wires notification modes, the Gotify channel and the operator pages into a Provider.

``install(provider, devices)`` is called once by ``devices.setup.install``. Always: the account
page's notification panel (/account/notifications) and the operator page (/admin). When
``gotify_url`` is set: ``provider.gotify`` (a GotifyStatus: URL, health, failures), the
``gotify`` channel in the notifier, ``push=gotify`` at enrollment (a Gotify client per device)
and deletion of that client when the device is revoked. Without it ``provider.gotify`` is None
and ``push=gotify`` is refused with invalid_request before the enrollment code is used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..devices.errors import PushUnavailable
from ..storage.models import Device, User
from .failures import FailureLog
from .gotify import GotifyAdmin, GotifyError
from .gotify_accounts import GotifyAccounts
from .gotify_channel import GotifyChannel
from .gotify_health import GotifyStatus

if TYPE_CHECKING:
    from ..devices.service import DeviceService
    from ..provider import Provider

log = logging.getLogger(__name__)


def install(provider: "Provider", devices: "DeviceService") -> None:
    provider.gotify = _install_gotify(provider, devices) if provider.settings.gotify_url else None

    def extend(app) -> None:
        from ..web import admin, notifications

        notifications.init_app(app)
        admin.init_app(app)

    provider.web_extensions.append(extend)


def _install_gotify(provider: "Provider", devices: "DeviceService") -> GotifyStatus:
    s = provider.settings
    if not s.gotify_admin_user or not s.gotify_admin_password:
        log.warning("CIBA_GOTIFY_URL is set without CIBA_GOTIFY_ADMIN_USER/PASSWORD: the "
                    "provider cannot create Gotify users, so push=gotify enrollments will fail")
    admin = GotifyAdmin(s.gotify_url, s.gotify_admin_user, s.gotify_admin_password,
                        timeout=s.gotify_timeout)
    accounts = GotifyAccounts(provider, admin)
    failures = FailureLog(provider, "gotify")
    channel = GotifyChannel(provider, accounts, failures)
    provider.notifier.register(channel)
    provider.gotify_channel = channel
    url = s.gotify_url.rstrip("/")

    def enroll(user: User, device: Device) -> dict:
        try:
            client_id, token = accounts.add_client(user, f"{device.display_name} (CIBA)"[:100])
        except (GotifyError, ValueError) as exc:
            status = getattr(exc, "status", None)
            failures.record(getattr(exc, "operation", "enroll"),
                            getattr(exc, "description", str(exc)), username=user.username,
                            status=status)
            raise PushUnavailable("The Gotify server could not set up this device; try again "
                                  "later or enroll with push=websocket") from None
        device.gotify_client_id = client_id
        device.gotify_client_token = provider.box.seal(token)
        return {"type": "gotify", "url": url, "client_token": token}

    def revoked(device: Device) -> None:
        if device.gotify_client_id is None:
            return
        try:
            accounts.delete_client(device.user_id, device.gotify_client_id)
        except GotifyError as exc:
            failures.record(exc.operation, f"{exc.description}: Gotify client "
                            f"{device.gotify_client_id} of a revoked device is left; delete it "
                            "in Gotify", status=exc.status, username=_username(provider, device))

    devices.push_setups["gotify"] = enroll
    devices.on_revoke(revoked)
    log.info("Gotify channel on %s", url)
    return GotifyStatus(url, s.gotify_admin_user, failures)


def _username(provider: "Provider", device: Device) -> str | None:
    from ..storage import users

    with provider.db.session() as s:
        user = users.get(s, device.user_id)
        return user.username if user else None
