"""The one place that builds the provider and its web application.

``build_provider`` constructs every service, in the order they depend on each other;
``create_app`` registers every blueprint, so the route map reads from top to bottom here. A
service that is off stays None on the Provider (``gotify`` without CIBA_GOTIFY_URL). Deployments
change behaviour through the policy object they pass in (server/oauth/policy.py), never by
patching what is built here.

    provider = build_provider(settings)        # no web: the CLI, benchmarks, tests
    app = create_app(settings)                  # the Flask app around build_provider(settings)
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, g, request

from . import metrics
from .clock import Clock
from .config import Settings
from .devices import payloads
from .devices.housekeeping import Housekeeper
from .devices.service import DeviceService
from .devices.user_codes import UserCodeVerifier
from .notify import Notifier
from .notify.bus import make_bus
from .notify.console import ConsoleChannel
from .notify.gotify_push import GotifyPush
from .notify.hub import Hub
from .notify.websocket import WebSocketChannel, attach
from .oauth.client_jwks import JwksCache
from .oauth.keys import KeyRing
from .oauth.mtls import load_ca_bundle
from .oauth.outbox import Outbox
from .oauth.policy import CibaPolicy
from .oauth.polling import make_tracker
from .oauth.server import AuthorizationServer
from .oauth.tokens import TokenIssuer
from .provider import Provider
from .signin_guard import SigninGuard
from .storage.directory import Directory

log = logging.getLogger(__name__)


def build_provider(settings: Settings | None = None, clock: Clock | None = None,
                   policy: CibaPolicy | None = None) -> Provider:
    """Every service of one provider process; nothing starts a thread until it serves.
    ``policy``: the CIBA policy hooks (default: the one CIBA_POLICY names, else the defaults)."""
    settings = settings or Settings.from_env()
    # 1. What everything stands on: settings, clock, policy, issuer, instance secret, database.
    provider = Provider(settings, clock, policy)
    # 2. Caches (invalidated across processes) and keys.
    provider.directory = Directory(provider.db)
    provider.polls = make_tracker(settings.redis_url, provider.issuer)
    provider.keys = KeyRing(provider.db, provider.clock)
    provider.keys.ensure()
    provider.tokens = TokenIssuer(settings, provider.clock, provider.db, provider.keys,
                                  provider.issuer)
    provider.jwks_cache = JwksCache()
    provider.client_ca = load_ca_bundle(settings.tls_client_ca)
    provider.signin_guard = SigninGuard(provider)
    # 3. Channels: the console's approval link is always there, the fallback of every other.
    provider.notifier = Notifier()
    provider.console = ConsoleChannel()
    provider.notifier.register(provider.console)
    # 4. After each decision: ping and push deliveries through a durable outbox (its loop runs
    #    in a serving process; it also starts on this process's first decision), and metrics.
    provider.outbox = Outbox(provider)
    provider.on_decision(provider.outbox)
    provider.on_decision(lambda req: metrics.decision(req.status))
    # 5. Authlib's authorization server: the CIBA backchannel endpoint and grant, refresh
    #    tokens, client_credentials, introspection, revocation, client authentication.
    provider.authorization = AuthorizationServer(provider)
    # 6. Devices: the bus carries events between provider processes to each process's hub of
    #    WebSockets; the WebSocket channel announces requests through it.
    provider.bus = make_bus(settings.redis_url, provider.issuer)
    provider.hub = Hub()
    attach(provider.bus, provider.hub)
    websocket = WebSocketChannel(
        provider.bus, lambda event: payloads.from_event(event, provider.describe_scope))
    provider.notifier.register(websocket)
    provider.devices = DeviceService(provider, websocket)
    provider.housekeeper = Housekeeper(provider, provider.hub)
    # CIBA §7.1 user_code: a TOTP shown by any of the user's devices (the default
    # verify_user_code hook asks it).
    provider.user_codes = UserCodeVerifier(provider)
    # 7. Gotify, when configured: another channel and another push choice at enrollment.
    if settings.gotify_url:
        gotify = GotifyPush(provider)
        provider.notifier.register(gotify.channel)
        provider.devices.push_setups["gotify"] = gotify.enroll
        provider.devices.on_revoke(gotify.revoked)
        provider.gotify, provider.gotify_channel = gotify.status, gotify.channel
    return provider


def create_app(settings: Settings | None = None, clock: Clock | None = None,
               provider: Provider | None = None, policy: CibaPolicy | None = None) -> Flask:
    """The Flask application serving ``provider`` (built from ``settings``, ``clock`` and
    ``policy`` when not given)."""
    settings = provider.settings if provider is not None else (settings or Settings.from_env())
    provider = provider or build_provider(settings, clock, policy)
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
    # Flask's session serializer made once per secret key set (web/session_cookie.py).
    from .web.session_cookie import CookieSessions

    app.session_interface = CookieSessions()
    if settings.fast_lane:
        # POST /token and /bc-authorize before Flask, inside the middleware (web/fast_lane.py).
        from .web.fast_lane import FastLane

        app.wsgi_app = FastLane(app, provider)  # type: ignore[method-assign]
        if settings.automated_approval_token:
            # The conformance hook's well-formed approvals too (web/testing.py).
            from .web.testing import ApprovalLane

            app.wsgi_app = ApprovalLane(app, provider)  # type: ignore[method-assign]
    if settings.device_lane:
        # GET /device/ws upgrades before Flask, inside the middleware (web/device_lane.py).
        from .web.device_lane import DeviceLane

        app.wsgi_app = DeviceLane(app, provider)  # type: ignore[method-assign]
    _middleware(app, settings)
    _request_hooks(app)
    _routes(app, provider)
    return app


def _middleware(app: Flask, settings: Settings) -> None:
    if settings.trusted_proxies:
        # Client addresses (rate limits) and schemes come from the proxies' X-Forwarded-* headers.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    # Outside ProxyFix: it must see the peer's own address (RFC 8705 client certificates).
    from .web.client_cert import ClientCertificateMiddleware

    app.wsgi_app = ClientCertificateMiddleware(app.wsgi_app, settings)  # type: ignore[method-assign]


def _routes(app: Flask, provider: Provider) -> None:
    """The route map, area by area (README's endpoint table)."""
    from .web import (account, admin, approval, cancel, ciba, device, devices_pages, errors,
                      notifications, oidc, ops, passkeys_pages, registration, testing)

    errors.register(app)  # RFC 6749 §5.2 error bodies, no 500 pages
    ops.init_app(app)  # /healthz /readyz /metrics, and the request counters
    app.register_blueprint(oidc.bp)  # discovery, /jwks, /userinfo, /openapi.json
    app.register_blueprint(ciba.bp)  # /bc-authorize, /token, /introspect, /revoke
    app.register_blueprint(cancel.bp)  # /bc-cancel
    app.register_blueprint(registration.bp)  # /register (RFC 7591, RFC 7592)
    app.register_blueprint(approval.bp)  # /approve/<link>: the console channel's page
    app.register_blueprint(account.bp)  # /account: sign-in
    passkeys_pages.init_app(app)  # /account/passkeys (WebAuthn)
    notifications.init_app(app)  # /account/notifications
    app.register_blueprint(devices_pages.bp)  # /account/devices: enroll and revoke
    device.init_app(app)  # /device/...: the device protocol and its WebSocket
    admin.init_app(app)  # /admin: the operators' console
    if provider.settings.automated_approval_token:
        log.warning("CIBA_AUTOMATED_APPROVAL_TOKEN is set: POST /testing/ciba-approval can approve "
                    "any request. Use this only for conformance testing.")
        app.register_blueprint(testing.bp)  # /testing/ciba-approval (conformance suite only)


def _request_hooks(app: Flask) -> None:
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
