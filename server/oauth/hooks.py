"""Policies that deployments differ on, each replaceable by a setting naming a function.

- ``CIBA_LOGIN_HINT_RESOLVER="pkg.module:func"``: ``func(session, login_hint) -> User | None``.
  Default: the hint is a username, or an email address (case-insensitive).
- ``CIBA_BINDING_MESSAGE_VALIDATOR="pkg.module:func"``: ``func(message, settings) -> str | None``
  returns an error description, or None when the message is acceptable. Default rule below.
"""

from __future__ import annotations

import importlib
import unicodedata
from typing import Callable

from sqlalchemy.orm import Session

from ..config import Settings
from ..storage import users
from ..storage.models import User

LoginHintResolver = Callable[[Session, str], "User | None"]
BindingMessageValidator = Callable[[str, Settings], "str | None"]


def resolve_login_hint(s: Session, login_hint: str) -> User | None:
    """Default: username or email address."""
    return users.by_username_or_email(s, login_hint.strip())


def validate_binding_message(message: str, settings: Settings) -> str | None:
    """Default rule (CIBA §7.1: 'relatively short', 'plain text'): 1 to
    ``binding_message_max_length`` characters, no control or format characters, no markup."""
    if not message.strip():
        return "binding_message is empty"
    if len(message) > settings.binding_message_max_length:
        return f"binding_message is longer than {settings.binding_message_max_length} characters"
    for ch in message:
        if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}:
            return "binding_message contains control characters"
    if "<" in message or ">" in message:
        return "binding_message must be plain text"
    return None


def load(path: str, default: Callable) -> Callable:
    """Import ``module:function`` or return the default when the setting is empty."""
    if not path:
        return default
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
