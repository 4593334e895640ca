"""Receives login notifications from a Gotify server: the WebSocket ``GET {url}/stream``.

Gotify REST API 2.1.0, operation streamMessages: authenticated with a client token (sent here
in the ``X-Gotify-Key`` header, never in the URL), each text frame is one ``Message`` model
(``id``, ``appid``, ``message``, ``title``, ``priority``, ``extras``, ``date``).

The listener runs on its own thread and reconnects after any error, close or server restart
with exponential backoff (the :class:`Backoff` of the provider WebSocket listener: doubling,
capped, with jitter); a refused token (401/403) waits ``refused_retry``. A quiet connection is
probed with a WebSocket ping every ``ping_interval`` seconds; no answer within another interval
means it is dead and is replaced. Callbacks run on the listener thread: a UI hands them on
(Kivy: ``Clock.schedule_once``). The token is never logged.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Callable

import websocket

from .ws_listener import Backoff

log = logging.getLogger(__name__)

CONNECTING, CONNECTED, DISCONNECTED = "connecting", "connected", "disconnected"
EXTRAS_KEY = "ciba::request"  # where the provider puts its event in a Message's extras


def ciba_event(message: dict, issuer: str) -> dict | None:
    """The provider's event in a Gotify Message (``extras["ciba::request"]``), or None when it
    carries none or names another issuer (docs/device-protocol.md §8). Only a nudge: what it
    says is checked with the provider before anything is shown."""
    extras = message.get("extras")
    event = extras.get(EXTRAS_KEY) if isinstance(extras, dict) else None
    if not isinstance(event, dict) or event.get("issuer") != issuer:
        return None
    return event


def stream_url(base_url: str) -> str:
    """``https://host/gotify`` -> ``wss://host/gotify/stream`` (ws for http)."""
    base = base_url.rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(plain):
            base = secure + base[len(plain):]
    return f"{base}/stream"


class GotifyListener:
    """Keeps one Gotify stream open and hands each Message (a dict) to ``on_message``."""

    def __init__(self, url: str, client_token: str, on_message: Callable[[dict], None],
                 on_state: Callable[[str], None] | None = None, *,
                 backoff: Backoff | None = None, ping_interval: float = 30.0,
                 connect_timeout: float = 10.0, refused_retry: float = 60.0) -> None:
        self.url = stream_url(url)
        self._token = client_token
        self._on_message, self._on_state = on_message, on_state
        self.backoff = backoff or Backoff()
        self.ping_interval, self.connect_timeout = ping_interval, connect_timeout
        self.refused_retry = refused_retry
        self.state = DISCONNECTED
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # no token
        return f"GotifyListener({self.url!r}, state={self.state!r})"

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gotify-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.abort()  # wakes the thread blocked in recv
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("gotify listener: on_state callback failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._set_state(CONNECTING)
            delay = self._connect_and_receive()
            self._set_state(DISCONNECTED)
            if self._stop.is_set():
                break
            log.info("gotify listener: %s; retrying in %.1f s", self.last_error, delay)
            self._stop.wait(delay)

    def _connect_and_receive(self) -> float:
        """One connection's life; returns the seconds to wait before the next attempt."""
        try:
            ws = websocket.create_connection(self.url, timeout=self.connect_timeout,
                                             header={"X-Gotify-Key": self._token},
                                             enable_multithread=True)
        except websocket.WebSocketBadStatusException as exc:
            self.last_error = f"upgrade refused: HTTP {exc.status_code}"
            refused = exc.status_code in (401, 403)
            return self.refused_retry if refused else self.backoff.next_delay()
        except Exception as exc:  # refused, DNS, TLS, timeout...
            self.last_error = f"connect failed: {type(exc).__name__}"
            return self.backoff.next_delay()
        self._ws = ws
        if self._stop.is_set():
            ws.abort()
        self.backoff.reset()
        self._set_state(CONNECTED)
        try:
            self._receive(ws)
        finally:
            self._ws = None
            ws.shutdown()
        return self.backoff.next_delay()

    def _receive(self, ws: websocket.WebSocket) -> None:
        """Reads frames until the connection ends; sets last_error to why it ended."""
        ws.settimeout(self.ping_interval)
        unanswered = False
        while not self._stop.is_set():
            try:
                opcode, frame = ws.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                if unanswered:
                    self.last_error = "no answer to ping"
                    return
                unanswered = True
                try:
                    ws.ping()
                except Exception as exc:
                    self.last_error = f"ping failed: {type(exc).__name__}"
                    return
                continue
            except Exception as exc:
                self.last_error = f"connection lost: {type(exc).__name__}"
                return
            unanswered = False
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.last_error = "closed by server"
                return
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self._deliver(frame.data)

    def _deliver(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("gotify listener: ignored a frame that is not JSON")
            return
        if not isinstance(message, dict):
            log.warning("gotify listener: ignored a frame that is not a Message object")
            return
        try:
            self._on_message(message)
        except Exception:
            log.exception("gotify listener: on_message callback failed")
