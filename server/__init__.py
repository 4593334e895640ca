"""The CIBA OpenID Provider. ``create_app()`` builds the Flask application."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, g, request

from .clock import Clock
from .config import Settings
from .provider import Provider

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Clock | None = None,
               provider: Provider | None = None) -> Flask:
    settings = settings or Settings.from_env()
    provider = provider or Provider(settings, clock)
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=provider.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=provider.issuer.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
    )
    app.extensions["ciba"] = provider
    from .web.session_cookie import CookieSessions

    app.session_interface = CookieSessions()
    if settings.trusted_proxies:
        # Client addresses (rate limits) and schemes come from the proxies' X-Forwarded-* headers.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    # Outside ProxyFix: it must see the peer's own address (RFC 8705 client certificates).
    from .web.client_cert import ClientCertificateMiddleware

    app.wsgi_app = ClientCertificateMiddleware(app.wsgi_app, settings)  # type: ignore[method-assign]

    from .web import (account, approval, cancel, ciba, errors, oidc, ops, passkeys_pages,
                      registration, testing)

    errors.register(app)
    ops.init_app(app)
    for module in (oidc, ciba, cancel, approval, account, registration):
        app.register_blueprint(module.bp)
    passkeys_pages.init_app(app)
    if settings.automated_approval_token:
        log.warning("CIBA_AUTOMATED_APPROVAL_TOKEN is set: POST /testing/ciba-approval can approve "
                    "any request. Use this only for conformance testing.")
        app.register_blueprint(testing.bp)
    from .devices.setup import install as install_devices; install_devices(provider)  # noqa: E702
    for extend in provider.web_extensions:
        extend(app)

    from . import audit
    # One directory version per request (storage/versions.py): caches are checked once.
    from .storage import versions

    @app.before_request
    def request_context():
        # After ProxyFix: the real client address when CIBA_TRUSTED_PROXIES is set.
        audit.bind_address(request.remote_addr)
        g._directory_scope = versions.begin_request()

    @app.teardown_request
    def directory_scope_end(_exc):
        token = g.pop("_directory_scope", None)
        if token is not None:
            versions.end_request(token)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app
