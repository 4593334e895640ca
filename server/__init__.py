"""The CIBA OpenID Provider. ``create_app()`` builds the Flask application and
``build_provider()`` the object graph without it; both live in server/wiring.py.

They are loaded on first use, so that ``server.oauth`` (the CIBA grant and endpoint on Authlib)
can be imported into another provider without the rest of this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .wiring import build_provider, create_app

__all__ = ["build_provider", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import wiring

        return getattr(wiring, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
