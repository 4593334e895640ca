"""What the provider creates on the Gotify server, through its REST API, for users and devices.

Per provider user: one Gotify user (``<gotify_user_prefix><username>``, a generated password) and
one application whose token posts that user's login notifications; both secrets are stored
sealed with the provider's SecretBox (table ``gotify_accounts``). Per device enrolled with
``push=gotify``: one Gotify client, whose token only the device keeps (it listens on
``GET /stream`` with it); the provider keeps the client id to delete it when the device is
revoked.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..storage import notifications
from ..storage.models import GotifyAccount, User
from .gotify import GotifyAdmin, GotifyError

if TYPE_CHECKING:
    from ..ports import ProviderCore

APP_NAME = "CIBA sign-in"
REFUSED = frozenset({401, 403})


@dataclass(frozen=True)
class GotifyCredentials:
    username: str
    password: str
    app_token: str | None


class GotifyAccounts:
    def __init__(self, provider: "ProviderCore", admin: GotifyAdmin) -> None:
        self.p = provider
        self.admin = admin
        self._lock = threading.Lock()

    def credentials(self, user_id: str) -> GotifyCredentials | None:
        """The stored account of a user, or None if none was set up."""
        with self.p.db.session() as s:
            row = notifications.gotify_account(s, user_id)
            if row is None:
                return None
            return self._open(row)

    def ensure(self, user: User, *, refresh: bool = False) -> GotifyCredentials:
        """The user's Gotify user and application, created on first use (or ``refresh``:
        the password set again and a new application, after Gotify refused the old ones)."""
        with self._lock:
            with self.p.db.session() as s:
                row = notifications.gotify_account(s, user.id)
                if row is None:
                    row = notifications.claim_gotify_account(s, GotifyAccount(
                        user_id=user.id, created_at=self.p.clock.now(),
                        gotify_username=self.p.settings.gotify_user_prefix + user.username,
                        password_sealed=self.p.box.seal(secrets.token_urlsafe(24))))
                creds = self._open(row)
            if creds.app_token is not None and not refresh:
                return creds
            self.admin.ensure_user(creds.username, creds.password)
            app_id, token = self.admin.create_application(
                creds.username, creds.password, APP_NAME,
                f"Sign-in requests from {self.p.issuer}")
            with self.p.db.session() as s:
                notifications.set_gotify_app(s, user.id, app_id, self.p.box.seal(token))
            return GotifyCredentials(creds.username, creds.password, token)

    def add_client(self, user: User, name: str) -> tuple[int, str]:
        """A new Gotify client of the user's Gotify user: (client id, client token)."""
        creds = self.ensure(user)
        try:
            return self.admin.create_client(creds.username, creds.password, name)
        except GotifyError as exc:
            if exc.status not in REFUSED:
                raise
        creds = self.ensure(user, refresh=True)  # the Gotify user was changed or recreated
        return self.admin.create_client(creds.username, creds.password, name)

    def delete_client(self, user_id: str, client_id: int) -> bool:
        creds = self.credentials(user_id)
        if creds is None:
            return False
        return self.admin.delete_client(creds.username, creds.password, client_id)

    def _open(self, row: GotifyAccount) -> GotifyCredentials:
        token = self.p.box.open(row.app_token_sealed) if row.app_token_sealed else None
        return GotifyCredentials(row.gotify_username, self.p.box.open(row.password_sealed), token)
