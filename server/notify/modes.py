"""Per-user notification modes: which channel announces a user's login requests.

``websocket`` | ``gotify`` | ``console``, or empty ("auto": the push channel of the user's
newest device, else console; see ``Provider.channel_mode_for``). Set with
``ciba-provider users notify USER --mode ...`` or on the account page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..storage import users
from ..storage.models import User

if TYPE_CHECKING:
    from ..ports import ProviderCore

MODES = ("websocket", "gotify", "console")
AUTO = "auto"


class ModeError(ValueError):
    """An unknown mode or user; the message is meant for the person who asked."""


def parse(value: str) -> str:
    """A stored mode ("" for auto) from what a person typed or chose."""
    value = (value or "").strip().lower()
    if value == AUTO:
        return ""
    if value not in MODES:
        raise ModeError(f"the notification mode must be one of {', '.join(MODES + (AUTO,))}")
    return value


def available(provider: "ProviderCore") -> list[str]:
    """Modes whose channel this provider has (gotify only when a server is configured)."""
    return [m for m in MODES if m in provider.notifier.channels]


def set_mode(provider: "ProviderCore", username: str, value: str) -> User:
    mode = parse(value)
    with provider.db.session() as s:
        user = users.by_username(s, username)
        if user is None:
            raise ModeError(f"no user named {username!r}")
        users.set_notification_mode(s, user, mode)
        s.flush()
        s.expunge(user)
    return user


def effective(provider: "ProviderCore", user: User) -> str:
    """The channel that reaches the user now (console when the chosen one is missing)."""
    mode = provider.channel_mode_for(user)
    return mode if mode in provider.notifier.channels else "console"
