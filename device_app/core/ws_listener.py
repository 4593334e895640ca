"""The WebSocket push channel (docs/device-protocol.md §5) on a background thread.

Connects with a fresh device-auth JWS, reports each message, and after every (re)connect
fetches /device/requests so that nothing sent while offline is missed. When the connection
fails or drops it retries quickly at first (a restarted provider is found within half a second),
then backs off (with jitter), until stop(); ``retry_now()`` cuts a wait short.
``device_revoked`` (or a refused upgrade) ends it for good.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import websocket

from .api import ProviderClient, ProviderError

log = logging.getLogger(__name__)

# Connection states reported through on_state.
CONNECTING, CONNECTED, OFFLINE, REFUSED, REVOKED, STOPPED = (
    "connecting", "connected", "offline", "refused", "revoked", "stopped")


class Backoff:
    """Short delays first, so a provider that comes back is found within a second; then longer.

    For ``fast_for`` seconds after the first failure the delays are ``initial`` up to
    ``fast_cap`` (0.25, 0.4, 0.4 ... s: a refused TCP connect costs next to nothing), so a
    provider that restarts is reached within half a second of answering again, and a new
    request is on the screen within a second (bench/device_latency.py measures it); after that
    they double up to ``maximum`` (a long outage should not drain a battery). Each delay gets up
    to 20 % random jitter so that many devices do not reconnect in step.
    """

    def __init__(self, initial: float = 0.25, maximum: float = 30.0, factor: float = 2.0,
                 fast_for: float = 120.0, fast_cap: float = 0.4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self.fast_for, self.fast_cap, self.clock = fast_for, fast_cap, clock
        self.attempt = 0
        self._since: float | None = None

    def next_delay(self) -> float:
        now = self.clock()
        if self._since is None:
            self._since = now
        delay = self.initial * self.factor ** self.attempt
        self.attempt += 1
        cap = self.fast_cap if now - self._since < self.fast_for else self.maximum
        return min(cap, delay) * (1 + random.uniform(0, 0.2))

    def reset(self) -> None:
        self.attempt = 0
        self._since = None


class WebSocketListener:
    """Keeps one account's WebSocket open; calls back from its own thread.

    ``on_message(msg)`` gets each server message as a dict, plus a synthetic
    ``{"type": "sync", "requests": [...]}`` after each (re)connect; ``on_state(state, detail)``
    gets connecting / connected / offline / refused / revoked / stopped.
    """

    def __init__(self, client: ProviderClient, on_message: Callable[[dict[str, Any]], None],
                 on_state: Callable[[str, str], None], backoff: Backoff | None = None,
                 ping_interval: float = 25.0, connect_timeout: float = 10.0,
                 refused_retry: float = 60.0) -> None:
        self.client = client
        self.on_message = on_message
        self.on_state = on_state
        self.backoff = backoff or Backoff()
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.refused_retry = refused_retry
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None
        self.retry_at: float | None = None  # time.time() of the next attempt while offline

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ciba-ws", daemon=True)
        self._thread.start()

    def retry_now(self) -> None:
        """Stop waiting and connect now (the person pressed Retry)."""
        self.backoff.reset()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.abort()
            except Exception:  # already closed
                pass

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.on_state(CONNECTING, "")
            delay = self._connect_and_listen()
            if self._stop.is_set() or delay is None:
                break
            self.retry_at = time.time() + delay
            self._wake.wait(delay)
            self._wake.clear()
            self.retry_at = None
        self.on_state(STOPPED if self._stop.is_set() else REVOKED, "")

    def _connect_and_listen(self) -> float | None:
        """One connection's life; the seconds to wait before the next, or None to give up."""
        url = self.client.websocket_url()
        path = urlsplit(url).path
        headers = self.client.auth_header("GET", path)
        try:
            ws = websocket.create_connection(url, header=headers, timeout=self.connect_timeout,
                                             enable_multithread=True)
        except websocket.WebSocketBadStatusException as exc:
            log.info("WebSocket upgrade refused (HTTP %s)", exc.status_code)
            self.on_state(REFUSED if exc.status_code in (401, 403) else OFFLINE, f"HTTP {exc.status_code}")
            return self.refused_retry if exc.status_code in (401, 403) else self.backoff.next_delay()
        except (OSError, websocket.WebSocketException) as exc:
            self.on_state(OFFLINE, type(exc).__name__)
            return self.backoff.next_delay()
        self._ws = ws
        if self._stop.is_set():
            ws.abort()
        try:
            self.backoff.reset()
            self.on_state(CONNECTED, "")
            self._sync()
            return self._listen(ws)
        finally:
            self._ws = None
            try:
                ws.close(timeout=1)
            except Exception:
                pass

    def _sync(self) -> None:
        try:
            self.on_message({"type": "sync", "requests": self.client.list_requests()})
        except ProviderError as exc:
            log.info("Fetching pending requests failed: %s", exc.error)

    def _listen(self, ws: websocket.WebSocket) -> float | None:
        ws.settimeout(self.ping_interval)
        while not self._stop.is_set():
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                try:
                    ws.send(json.dumps({"type": "ping"}))
                except (OSError, websocket.WebSocketException):
                    break
                continue
            except (OSError, websocket.WebSocketException):
                break
            if not raw:  # closed by the server
                break
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            self.on_message(message)
            if message.get("type") == "device_revoked":
                return None
        self.on_state(OFFLINE, "connection lost")
        return self.backoff.next_delay()
