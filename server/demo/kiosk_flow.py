"""One sign-in at the kiosk: a CIBA request and the wait for its outcome (CIBA §7, §10).

A ``Login`` starts the backchannel request, then a worker thread waits for the result:

- poll mode (CIBA §10.1): a token request every ``interval`` seconds, 5 s more after slow_down;
- ping mode (CIBA §10.2): it waits for the provider's POST to the kiosk's notification endpoint
  (``Login.notified()``), then makes one token request. At the deadline it asks once more, so an
  expiry is reported even if no ping arrives.

On tokens it verifies the ID token, reads the member's name from UserInfo and the loans from
the resource API with the access token. The browser reads ``Login.view()`` to draw the page.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from .ciba_client import CibaClient, CibaError, Started, next_interval

log = logging.getLogger(__name__)

#: Letters and digits that are hard to confuse when read aloud or on a small screen.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def binding_message(label: str, length: int = 4) -> str:
    """E.g. ``LIB-4 · 7F3K``: the kiosk's label and a short random code (CIBA §7.1)."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
    return f"{label} · {code}"


@dataclass
class FlowSettings:
    scope: str = "openid profile email"
    label: str = "LIB-4"
    requested_expiry: int | None = 120
    mode: str = "poll"  # "poll" or "ping"
    resource_api: str = ""  # base URL of the loans API


class Login:
    def __init__(self, client: CibaClient, settings: FlowSettings, login_hint: str) -> None:
        self.client, self.settings, self.login_hint = client, settings, login_hint
        self.id = secrets.token_urlsafe(16)
        self.state = "starting"
        self.binding_message = binding_message(settings.label)
        self.message = ""
        self.name = ""
        self.loans: list[dict] | None = None
        self.tokens: dict[str, Any] = {}
        self.started: Started | None = None
        self.notification_token = secrets.token_urlsafe(32) if settings.mode == "ping" else None
        self.finished_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pinged = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Send bc-authorize; on success, wait for the outcome on a worker thread."""
        try:
            self.started = self.client.start(
                self.login_hint, scope=self.settings.scope, binding_message=self.binding_message,
                requested_expiry=self.settings.requested_expiry,
                client_notification_token=self.notification_token)
        except CibaError as exc:
            if exc.error == "unknown_user_id":
                self._finish("unknown_user", f"No library member is called “{self.login_hint}”. "
                                             "Check the spelling, or ask at the desk.")
            else:
                log.warning("bc-authorize failed: %s", exc)
                self._finish("error", f"The sign-in could not start ({exc.meaning}).")
            return
        self.state = "waiting"
        threading.Thread(target=self._wait, name=f"kiosk-login-{self.id[:6]}", daemon=True).start()

    def notified(self) -> None:
        """The provider pinged (CIBA §10.2): the result is ready at the token endpoint."""
        with self._lock:
            self._pinged = True
        self._wake.set()

    def cancel(self) -> None:
        """Stop waiting; a request still pending is withdrawn at the provider, so the person's
        phone stops asking (the provider's cancel extension, best effort)."""
        self._stop.set()
        self._wake.set()
        if self.state in ("starting", "waiting"):
            self._finish("cancelled", "")
            if self.started is not None:
                try:
                    self.client.cancel(self.started.auth_req_id)
                except CibaError as exc:
                    log.info("cancel at the provider failed: %s", exc.error)

    def sign_out(self) -> None:
        """Forget the tokens and revoke them at the provider (RFC 7009), best effort."""
        self.cancel()
        tokens, self.tokens = self.tokens, {}
        for kind in ("refresh_token", "access_token"):
            if tokens.get(kind):
                try:
                    self.client.revoke(tokens[kind], kind)
                except CibaError as exc:
                    log.info("revocation failed: %s", exc)
        self.loans, self.name = None, ""

    @property
    def done(self) -> bool:
        return self.state not in ("starting", "waiting")

    def view(self) -> dict:
        """What the page shows, as JSON."""
        out: dict[str, Any] = {"state": self.state, "message": self.message}
        if self.state == "waiting" and self.started:
            out.update(binding_message=self.binding_message,
                       remaining=int(round(self.started.remaining())),
                       expires_in=self.started.expires_in)
        if self.state == "welcome":
            out.update(name=self.name, loans=self.loans)
        return out

    # -- the wait -----------------------------------------------------------------------------
    def _wait(self) -> None:
        assert self.started is not None
        interval = float(self.started.interval)
        ping = self.settings.mode == "ping"
        while not self._stop.is_set():
            remaining = self.started.remaining()
            if ping:
                self._wake.wait(timeout=max(remaining, 0.0) + 0.5)
            else:
                self._wake.wait(timeout=min(interval, remaining + 0.5))
            self._wake.clear()
            if self._stop.is_set():
                return
            if ping and self.started.remaining() > 0 and not self._was_pinged():
                continue
            try:
                tokens = self.client.token(self.started.auth_req_id)
            except CibaError as exc:
                if exc.error in ("authorization_pending", "slow_down"):
                    interval = next_interval(interval, exc)
                    if self.started.remaining() <= 0:
                        # The provider still says pending past the deadline: treat as expired.
                        self._finish("expired", "")
                        return
                    continue
                if exc.error == "access_denied":
                    self._finish("denied", "")
                elif exc.error == "expired_token":
                    self._finish("expired", "")
                else:
                    log.warning("token request failed: %s", exc)
                    self._finish("error", f"The sign-in failed ({exc.meaning}).")
                return
            self._welcome(tokens)
            return

    def _was_pinged(self) -> bool:
        with self._lock:
            pinged, self._pinged = self._pinged, False
        return pinged

    def _welcome(self, tokens: dict) -> None:
        try:
            self.client.id_token_claims(tokens.get("id_token", ""))
            info = self.client.userinfo(tokens["access_token"])
        except Exception as exc:  # a bad ID token or UserInfo failure ends the sign-in
            log.warning("could not verify the sign-in: %s", exc)
            self._finish("error", "The provider's answer could not be verified.")
            return
        if self._stop.is_set():
            return
        self.tokens = tokens
        self.name = str(info.get("name") or info.get("preferred_username") or self.login_hint)
        self.loans = self._fetch_loans(tokens["access_token"])
        if self.loans is None:
            self.message = "Your loans could not be loaded right now."
        self._finish("welcome", self.message)

    def _fetch_loans(self, access_token: str) -> list[dict] | None:
        if not self.settings.resource_api:
            return None
        try:
            response = requests.get(self.settings.resource_api.rstrip("/") + "/loans",
                                    headers={"Authorization": f"Bearer {access_token}"},
                                    timeout=10)
            response.raise_for_status()
            loans = response.json().get("loans")
            return loans if isinstance(loans, list) else None
        except (requests.RequestException, ValueError, AttributeError) as exc:
            log.warning("loans API failed: %s", exc)
            return None

    def _finish(self, state: str, message: str) -> None:
        if self._stop.is_set() and state != "cancelled":
            return  # signed out or cancelled meanwhile: the page has moved on
        self.state, self.message = state, message
        self.finished_at = time.monotonic()
