"""The WebSocket channel (docs/device-protocol.md §5): login requests pushed to connected devices.

``WebSocketChannel`` is the Notifier's channel named "websocket": it turns the core's events
into bus messages addressed to one user, and ``attach`` makes each process's hub deliver them to
that user's sockets. ``DeviceSocket`` wraps one accepted socket (anything with ``send(text)``
and ``close(reason=code, message=text)``: server/web/ws_transport.py) with a send lock, and
holds events back until the greeting and the pending requests have gone out, so that ``hello``
is always the first message.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from .. import metrics
from . import LoginRequestEvent
from .bus import InProcessBus
from .hub import Hub

log = logging.getLogger(__name__)


class WebSocketChannel:
    name = "websocket"

    def __init__(self, bus: InProcessBus, payload: Callable[[LoginRequestEvent], dict]) -> None:
        self.bus = bus
        self.payload = payload

    def reaches(self, user_id: str) -> bool:
        """Whether a message to the user can reach anyone now. False only when the bus stays in
        this process, every handler on it is a hub's (``attach``) and none of those hubs holds
        a socket of the user: then the Notifier does not build the event (docs/performance.md,
        round 5). A device connecting meanwhile loses nothing: its socket enters the hub before
        its pending requests are read (web/device.py, ``DeviceSession.prepare``), and the
        request was committed before this check, so a socket that enters later reads it in
        its greeting. On the Redis bus, another process may hold the user's sockets: True."""
        if not self.bus.local_only:
            return True
        for handler in self.bus.handlers:
            hub = getattr(handler, "hub", None)
            if hub is None or hub.has_user(user_id):
                return True
        return False

    def request_created(self, event: LoginRequestEvent) -> None:
        self.bus.publish({"kind": "send", "user_id": event.user_id,
                          "message": {"type": "login_request", "request": self.payload(event)}})

    def request_resolved(self, user_id: str, request_id: str, status: str) -> None:
        self.bus.publish({"kind": "send", "user_id": user_id,
                          "message": {"type": "request_resolved", "request_id": request_id,
                                      "status": status}})

    def devices_revoked(self, device_ids: list[str]) -> None:
        self.bus.publish({"kind": "drop", "device_ids": list(device_ids)})


def attach(bus: InProcessBus, hub: Hub) -> None:
    """Deliver the bus's messages to this process's sockets."""

    def handle(message: dict) -> None:
        if message.get("kind") == "send" and isinstance(message.get("user_id"), str):
            sent = hub.send_to_user(message["user_id"], message.get("message") or {})
            if sent:
                metrics.delivery("websocket", True, sent)
        elif message.get("kind") == "drop" and isinstance(message.get("device_ids"), list):
            hub.drop_devices(str(d) for d in message["device_ids"])

    handle.hub = hub  # type: ignore[attr-defined]  # WebSocketChannel.reaches asks it
    bus.subscribe(handle)


class DeviceSocket:
    """One device's accepted WebSocket; ``send`` is safe from any thread or greenlet."""

    def __init__(self, ws: Any, device_id: str, user_id: str) -> None:
        self.ws = ws
        self.device_id = device_id
        self.user_id = user_id
        self.closed = False
        self._lock = threading.Lock()
        self._held: list[dict] | None = []

    def open(self, greeting: list[dict]) -> None:
        """Send the greeting (hello, pending requests), then any events that came meanwhile."""
        with self._lock:
            held, self._held = self._held or [], None
            for message in greeting + held:
                if not self._write(message):
                    break

    def send(self, message: dict) -> bool:
        with self._lock:
            if self.closed:
                return False
            if self._held is not None:
                self._held.append(message)
                return True
            return self._write(message)

    def _write(self, message: dict) -> bool:
        try:
            self.ws.send(json.dumps(message, separators=(",", ":")))
            return True
        except Exception as exc:  # the peer is gone; the handler will notice and clean up
            log.debug("send to device %s failed: %s", self.device_id[:8], type(exc).__name__)
            self.closed = True
            return False

    def close(self) -> None:
        with self._lock:
            self.closed = True
            try:
                self.ws.close(message="device revoked")
            except Exception:
                pass
