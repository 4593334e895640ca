"""Gotify as a push channel for enrolled devices, built by ``server.wiring`` when ``gotify_url``
is set: the ``gotify`` channel in the notifier, ``push=gotify`` at enrollment (a Gotify client
per device), deletion of that client when the device is revoked, and the status the operator
pages show (``provider.gotify``: URL, health, failures). Without a Gotify server
``provider.gotify`` is None and ``push=gotify`` is refused with invalid_request before the
enrollment code is used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..storage.models import Device, User
from . import PushSetupError
from .failures import FailureLog
from .gotify import GotifyAdmin, GotifyError
from .gotify_accounts import GotifyAccounts
from .gotify_channel import GotifyChannel
from .gotify_health import GotifyStatus

if TYPE_CHECKING:
    from ..ports import ProviderCore

log = logging.getLogger(__name__)


class GotifyPush:
    """The Gotify pieces of one provider: ``channel``, ``status``, and the enrollment and
    revocation steps the device service calls (``enroll``, ``revoked``)."""

    def __init__(self, provider: "ProviderCore") -> None:
        s = provider.settings
        if not s.gotify_admin_user or not s.gotify_admin_password:
            log.warning("CIBA_GOTIFY_URL is set without CIBA_GOTIFY_ADMIN_USER/PASSWORD: the "
                        "provider cannot create Gotify users, so push=gotify enrollments will "
                        "fail")
        self.p = provider
        admin = GotifyAdmin(s.gotify_url, s.gotify_admin_user, s.gotify_admin_password,
                            timeout=s.gotify_timeout)
        self.accounts = GotifyAccounts(provider, admin)
        self.failures = FailureLog(provider, "gotify")
        self.channel = GotifyChannel(provider, self.accounts, self.failures)
        self.url = s.gotify_url.rstrip("/")
        self.status = GotifyStatus(self.url, s.gotify_admin_user, self.failures)
        log.info("Gotify channel on %s", self.url)

    def enroll(self, user: User, device: Device) -> dict:
        """``push=gotify`` at enrollment: a Gotify client for the (not yet stored) device."""
        try:
            client_id, token = self.accounts.add_client(user,
                                                        f"{device.display_name} (CIBA)"[:100])
        except (GotifyError, ValueError) as exc:
            status = getattr(exc, "status", None)
            self.failures.record(getattr(exc, "operation", "enroll"),
                                 getattr(exc, "description", str(exc)), username=user.username,
                                 status=status)
            raise PushSetupError("The Gotify server could not set up this device; try again "
                                 "later or enroll with push=websocket") from None
        device.gotify_client_id = client_id
        device.gotify_client_token = self.p.box.seal(token)
        return {"type": "gotify", "url": self.url, "client_token": token}

    def revoked(self, device: Device) -> None:
        if device.gotify_client_id is None:
            return
        try:
            self.accounts.delete_client(device.user_id, device.gotify_client_id)
        except GotifyError as exc:
            self.failures.record(exc.operation, f"{exc.description}: Gotify client "
                                 f"{device.gotify_client_id} of a revoked device is left; delete "
                                 "it in Gotify", status=exc.status, username=self._username(device))

    def _username(self, device: Device) -> str | None:
        from ..storage import users

        with self.p.db.session() as s:
            user = users.get(s, device.user_id)
            return user.username if user else None
