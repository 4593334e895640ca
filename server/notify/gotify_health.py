"""The Gotify channel's state for the account and operator pages: URL, health, failures."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .failures import FailureLog
from .gotify import GotifyAdmin, GotifyError

#: Seconds a health answer is reused, so that pages do not wait on Gotify at every view.
CACHE_SECONDS = 15
TIMEOUT = 2


@dataclass(frozen=True)
class Health:
    ok: bool
    text: str  # "green", "unreachable", "HTTP 503 ..."
    checked_at: float


class GotifyStatus:
    def __init__(self, url: str, admin_user: str, failures: FailureLog,
                 probe: GotifyAdmin | None = None) -> None:
        self.url = url.rstrip("/")
        self.admin_user = admin_user  # shown; the password never is
        self.failures = failures
        self._probe = probe or GotifyAdmin(self.url, "", "", timeout=TIMEOUT, attempts=1)
        self._cached: Health | None = None
        self._lock = threading.Lock()

    def health(self, fresh: bool = False) -> Health:
        with self._lock:
            cached = self._cached
            if cached and not fresh and time.monotonic() - cached.checked_at < CACHE_SECONDS:
                return cached
        try:
            body = self._probe.health()
            state = str(body.get("health", "?")) if isinstance(body, dict) else "?"
            result = Health(state == "green", state, time.monotonic())
        except GotifyError as exc:
            text = "unreachable" if exc.status is None else f"HTTP {exc.status} {exc.description}"
            result = Health(False, text, time.monotonic())
        with self._lock:
            self._cached = result
        return result
