"""Access to the Provider from views."""

from __future__ import annotations

from flask import current_app

from ..provider import Provider


def current_provider() -> Provider:
    return current_app.extensions["ciba"]
