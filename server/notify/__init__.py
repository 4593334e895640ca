"""Channels that reach a user's device with a login request, and the dispatcher choosing them.

The core calls ``Notifier.request_created`` when a CIBA request is stored and
``Notifier.request_resolved`` when it is decided or expires. A channel must never block the
request: failures are logged and the request stays reachable by other paths (a device that
fetches pending requests, the console link).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

log = logging.getLogger(__name__)


@dataclass
class LoginRequestEvent:
    """What a channel may tell a device; never the client's auth_req_id or any token."""

    request_id: str  # the device request id
    user_id: str
    username: str
    client_name: str
    binding_message: str | None
    scope: str
    acr_values: str | None
    authorization_details: list | None
    created_at: float
    expires_at: float
    approval_url: str | None = None  # console channel only
    client_uri: str | None = None  # RFC 7591 §2: shown beside the client's name on the device
    logo_uri: str | None = None
    extra: dict = field(default_factory=dict)


class PushSetupError(Exception):
    """A push channel could not be set up for a device at enrollment (its server is down); the
    message is meant for the person enrolling."""


class Channel(Protocol):
    name: str

    def request_created(self, event: LoginRequestEvent) -> None: ...

    def request_resolved(self, user_id: str, request_id: str, status: str) -> None: ...


class Notifier:
    """Routes events to the channel each user is reached by (the user's notification_mode)."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        self.channels[channel.name] = channel

    def channels_for(self, mode: str) -> list[Channel]:
        """Console always serves as the fallback when the chosen channel is missing."""
        chosen = self.channels.get(mode)
        return [chosen] if chosen else [c for c in (self.channels.get("console"),) if c]

    def request_created(self, event: LoginRequestEvent, mode: str) -> None:
        self._created(self.channels_for(mode), event)

    def announce(self, user_id: str, mode: str, build: Callable[[], LoginRequestEvent]) -> None:
        """``request_created`` for a request of ``user_id``, with the event built only if one
        of the mode's channels can deliver it now: a channel may say it cannot with
        ``reaches(user_id) -> False`` (the WebSocket channel in one process, no socket of the
        user open: most requests under load, which then skip building the device's payload)."""
        channels = [c for c in self.channels_for(mode)
                    if getattr(c, "reaches", None) is None or c.reaches(user_id)]
        if channels:
            self._created(channels, build())

    def _created(self, channels: list[Channel], event: LoginRequestEvent) -> None:
        for channel in channels:
            try:
                channel.request_created(event)
            except Exception:  # a channel must never fail the request
                log.exception("channel %s failed to deliver request %s", channel.name,
                              event.request_id[:8])

    def request_resolved(self, user_id: str, request_id: str, status: str) -> None:
        for channel in self.channels.values():
            try:
                channel.request_resolved(user_id, request_id, status)
            except Exception:
                log.exception("channel %s failed to withdraw request %s", channel.name,
                              request_id[:8])
