"""The console channel: the provider logs a one-time approval link for the user to open.

This is the fallback for users without an enrolled device, and the only channel before one is.
The link carries a single-use token (256 bits) that is useless without the user's password.
"""

from __future__ import annotations

import logging

from . import LoginRequestEvent

log = logging.getLogger("ciba.console")


class ConsoleChannel:
    name = "console"

    def __init__(self) -> None:
        self.last_links: dict[str, str] = {}  # username -> link; read by the demo and tests

    def request_created(self, event: LoginRequestEvent) -> None:
        if not event.approval_url:
            return
        self.last_links[event.username] = event.approval_url
        log.warning("Login request for %s from %s (binding message: %s). Approve or deny at: %s",
                    event.username, event.client_name, event.binding_message or "-",
                    event.approval_url)

    def request_resolved(self, user_id: str, request_id: str, status: str) -> None:
        return None
