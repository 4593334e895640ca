"""The Gotify channel: login requests announced through a Gotify server (createMessage).

For a user whose notification mode is ``gotify``, each new request becomes one
``POST /message`` with the user's application token (docs/device-protocol.md §8): a title, a
short text (client name and binding message) and ``extras["ciba::request"]`` carrying the
device request id. The device listening on Gotify's ``/stream`` then fetches the request from
the provider with a signed call and decides as in WebSocket mode. No auth_req_id, token or
secret is ever put in a message. When a request is decided or expires, a silent message
(priority 0) with the new status lets the device drop its prompt.

Posting runs on a small worker pool, off the request path; each post tries at most
``GotifyAdmin.attempts`` times with a timeout. Failures are logged and recorded for the
operator page (FailureLog); the request itself stays pending and reachable by the other paths
(``GET /device/requests``).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable

from ..storage import users
from . import LoginRequestEvent
from .. import metrics
from .failures import FailureLog
from .gotify import GotifyError
from .gotify_accounts import REFUSED, GotifyAccounts

if TYPE_CHECKING:
    from ..ports import ProviderCore

log = logging.getLogger(__name__)

EXTRAS_KEY = "ciba::request"
REQUEST_PRIORITY = 8  # Gotify clients alert the user from 8 up
RESOLVED_PRIORITY = 0  # no notification; the app only updates its list
WORKERS = 4
MAX_QUEUED = 1000


def request_message(event: LoginRequestEvent, issuer: str) -> dict[str, Any]:
    """The createMessage body for a new login request (no secrets: see the module doc)."""
    text = f"{event.client_name} asks you to confirm a sign-in."
    if event.binding_message:
        text += f" Check that it shows: {event.binding_message}"
    return {"title": f"Sign-in request from {event.client_name}", "message": text,
            "priority": REQUEST_PRIORITY,
            "extras": {EXTRAS_KEY: {"event": "login_request", "request_id": event.request_id,
                                    "issuer": issuer, "expires_at": int(event.expires_at)},
                       "client::display": {"contentType": "text/plain"}}}


def resolved_message(request_id: str, status: str, issuer: str) -> dict[str, Any]:
    return {"title": f"Sign-in request {status}", "message": f"A sign-in request was {status}.",
            "priority": RESOLVED_PRIORITY,
            "extras": {EXTRAS_KEY: {"event": "request_resolved", "request_id": request_id,
                                    "issuer": issuer, "status": status},
                       "client::display": {"contentType": "text/plain"}}}


class GotifyChannel:
    name = "gotify"

    def __init__(self, provider: "ProviderCore", accounts: GotifyAccounts, failures: FailureLog,
                 workers: int = WORKERS, max_queued: int = MAX_QUEUED) -> None:
        self.p = provider
        self.accounts = accounts
        self.failures = failures
        self.max_queued = max_queued
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gotify-post")
        self._queued = 0
        self._idle = threading.Condition()

    # -- Channel protocol (called on the request path: only enqueue) ---------------------------
    def request_created(self, event: LoginRequestEvent) -> None:
        self._submit(self._post_request, event)

    def request_resolved(self, user_id: str, request_id: str, status: str) -> None:
        self._submit(self._post_resolved, user_id, request_id, status)

    def _submit(self, work: Callable[..., None], *args: Any) -> None:
        with self._idle:
            if self._queued >= self.max_queued:
                full = True
            else:
                full = False
                self._queued += 1
        if full:
            self.failures.record("enqueue", f"{self.max_queued} posts already waiting; dropped")
            return
        self._pool.submit(self._run, work, *args)

    def _run(self, work: Callable[..., None], *args: Any) -> None:
        try:
            work(*args)
        except Exception as exc:  # never lost silently
            log.exception("gotify channel: unexpected error")
            self.failures.record("post", type(exc).__name__)
        finally:
            with self._idle:
                self._queued -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 10) -> bool:
        """Block until every queued post is done (tests, shutdown); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._queued == 0, timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the work (on the pool) ----------------------------------------------------------------
    def _post_request(self, event: LoginRequestEvent) -> None:
        self._post(event.user_id, event.username, request_message(event, self.p.issuer),
                   event.request_id)

    def _post_resolved(self, user_id: str, request_id: str, status: str) -> None:
        with self.p.db.session() as s:
            user = users.get(s, user_id)
            if user is not None:
                s.expunge(user)
        if user is None or self.p.channel_mode_for(user) != self.name:
            return
        if self.accounts.credentials(user_id) is None:
            return  # nobody listens: nothing was announced either
        self._post(user_id, user.username, resolved_message(request_id, status, self.p.issuer),
                   request_id)

    def _post(self, user_id: str, username: str, body: dict[str, Any], request_id: str) -> None:
        creds = self.accounts.credentials(user_id)
        if creds is None or creds.app_token is None:
            self.failures.record("createMessage", "the user has no Gotify account yet (enroll "
                                 "a device with push=gotify)", username=username)
            return
        try:
            try:
                self._send(creds.app_token, body)
            except GotifyError as exc:
                if exc.status not in REFUSED:
                    raise
                # the application was deleted on the Gotify server: make a new one, once
                with self.p.db.session() as s:
                    user = users.get(s, user_id)
                    s.expunge(user)
                self._send(self.accounts.ensure(user, refresh=True).app_token or "", body)
        except GotifyError as exc:
            self.failures.record(exc.operation, f"{exc.description} (request {request_id[:8]})",
                                 username=username, status=exc.status)
            return
        metrics.delivery(self.name, True)
        log.info("gotify: %s for %s posted (request %s)", body["extras"][EXTRAS_KEY]["event"],
                 username, request_id[:8])

    def _send(self, app_token: str, body: dict[str, Any]) -> None:
        self.accounts.admin.post_message(app_token, body["title"], body["message"],
                                         body["extras"], priority=body["priority"])
