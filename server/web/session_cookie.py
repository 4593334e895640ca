"""Flask's signed-cookie sessions with the signing serializer made once per secret key.

Flask builds an itsdangerous serializer on every request, before it even looks for a cookie
(24 µs here), though the app's secret keys never change while it runs; the OAuth endpoints,
the hot paths, carry no cookie at all. The serializer holds no per-request state, so one per
key set serves every request and thread.
"""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CookieSessions(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._made: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        made = self._made
        if made is None or made[0] != keys:  # a changed key is never served the old one
            made = self._made = (keys, super().get_signing_serializer(app))
        return made[1]
