"""The library kiosk: a consumption device (CIBA §1) as its own Flask app.

It is a confidential client of the provider and reaches it only over HTTP (``CibaClient``); it
never opens the provider's database. The page (templates/kiosk.html) asks for a username or
email, shows the binding message and a countdown, then the member's loans; it reads its state
from ``GET /api/state`` once a second, so nothing reloads.

Delivery: ping (CIBA §10.2) when the kiosk was registered for it and the provider's discovery
lists it, otherwise poll (CIBA §10.1). The ping arrives at ``POST /ciba/notification``.

    GET  /                  the kiosk page
    POST /api/login         {"login_hint": "alice"}     -> state
    GET  /api/state                                      -> state
    POST /api/cancel, /api/done                          -> state ("start")
    POST /ciba/notification  Bearer client_notification_token, {"auth_req_id": ...}
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, jsonify, render_template, request, session

from ..security import equal
from .ciba_client import CibaClient, CibaError, ClientCredentials
from .kiosk_flow import FlowSettings, Login

log = logging.getLogger(__name__)

NOTIFICATION_PATH = "/ciba/notification"
#: Finished sign-ins are forgotten after this many seconds.
KEEP_FINISHED = 600


@dataclass
class KioskConfig:
    issuer: str
    client_id: str
    client_secret: str
    resource_api: str = ""
    label: str = "LIB-4"
    library_name: str = "City Library"
    #: How the kiosk was registered: "ping" (needs a notification endpoint) or "poll".
    registered_mode: str = "poll"
    requested_expiry: int | None = 120
    scope: str = "openid profile email"
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: Where a member sets up the authenticator app; empty: the provider's /account/devices.
    account_url: str = ""
    #: Shown when the provider reports that the request reached no device (ciba_stack_delivery
    #: "console"): what to do instead. {account_url} is filled in.
    no_device_help: str = ("Ask staff to help you sign in, or set up the authenticator app at "
                           "{account_url} and try again.")
    #: Shown later in the wait when the request did reach the member's device.
    device_help: str = ("Nothing on your phone? Open the authenticator app: the request shows "
                        "there as soon as the phone is online.")
    #: Shown when the provider does not say (a provider without the extension).
    unknown_help: str = ("Nothing on your phone? Link the authenticator app to your account "
                         "first ({account_url}), or ask at the desk.")


#: Seconds into the wait before the help line shows (for a phone, give it time to ring first).
HELP_AFTER = {"console": 0.0, "device": 20.0, None: 10.0}
PHONE = {"title": "Check your phone", "lead": "Approve the sign-in if your phone shows this code:"}
NO_PHONE = {"title": "No phone set up",
            "lead": "No phone will ask about this sign-in. Its code:"}


class Kiosk:
    """The sign-ins in progress, by id and by auth_req_id (for the ping callback)."""

    def __init__(self, config: KioskConfig) -> None:
        self.config = config
        self.client = CibaClient(config.issuer,
                                 ClientCredentials(config.client_id, config.client_secret))
        self.logins: dict[str, Login] = {}
        self._lock = threading.Lock()
        self._mode: str | None = None

    @property
    def mode(self) -> str:
        """ping when registered so and offered by the provider (discovery), else poll."""
        if self._mode is None:
            try:
                offered = self.client.supports_mode("ping")
            except CibaError:
                return "poll"  # provider not reachable yet; decide on the next call
            self._mode = "ping" if self.config.registered_mode == "ping" and offered else "poll"
            log.info("kiosk uses %s delivery", self._mode)
        return self._mode

    def begin(self, login_hint: str) -> Login:
        flow = FlowSettings(scope=self.config.scope, label=self.config.label,
                            requested_expiry=self.config.requested_expiry, mode=self.mode,
                            resource_api=self.config.resource_api)
        login = Login(self.client, flow, login_hint)
        with self._lock:
            self._prune()
            self.logins[login.id] = login
        login.start()
        return login

    def get(self, login_id: str | None) -> Login | None:
        with self._lock:
            return self.logins.get(login_id or "")

    def end(self, login_id: str | None) -> None:
        with self._lock:
            login = self.logins.pop(login_id or "", None)
        if login is not None:
            login.sign_out()

    def by_auth_req_id(self, auth_req_id: str) -> Login | None:
        with self._lock:
            for login in self.logins.values():
                if login.started and equal(login.started.auth_req_id, auth_req_id):
                    return login
        return None

    def close(self) -> None:
        with self._lock:
            logins, self.logins = list(self.logins.values()), {}
        for login in logins:
            login.cancel()

    def _prune(self) -> None:
        now = time.monotonic()
        for key, login in list(self.logins.items()):
            if login.finished_at is not None and now - login.finished_at > KEEP_FINISHED:
                del self.logins[key]


def waiting_words(config: KioskConfig, login: Login) -> dict:
    """The waiting screen's title, lead and help line. The kiosk cannot know whether the member
    has a phone set up; the provider can, and says so in its bc-authorize answer (a
    ``ciba_stack_delivery`` of "console" means no device), so the screen tells the truth."""
    started = login.started
    if login.state != "waiting" or started is None:
        return {}
    words = dict(NO_PHONE if started.delivery == "console" else PHONE, help="")
    if started.elapsed() >= HELP_AFTER[started.delivery]:
        text = {"console": config.no_device_help, "device": config.device_help}.get(
            started.delivery or "", config.unknown_help)
        words["help"] = text.replace("{account_url}", config.account_url
                                     or config.issuer.rstrip("/") + "/account/devices")
    return words


def create_kiosk_app(config: KioskConfig) -> Flask:
    app = Flask(__name__, template_folder="templates", static_folder="static",
                static_url_path="/static")
    app.config.update(SECRET_KEY=config.secret_key, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_NAME="kiosk",
                      MAX_CONTENT_LENGTH=16 * 1024)
    kiosk = Kiosk(config)
    app.extensions["kiosk"] = kiosk

    def state_of(login: Login | None):
        if login is None:
            return jsonify({"state": "start", "message": ""})
        return jsonify(login.view() | waiting_words(config, login))

    def json_only():
        # A JSON body cannot be sent cross-site without a CORS preflight: this is our CSRF check.
        if not request.is_json:
            return jsonify(error="invalid_request", error_description="JSON body required"), 415
        return None

    @app.get("/")
    def page():
        return render_template("kiosk.html", library_name=config.library_name,
                               label=config.label)

    @app.post("/api/login")
    def login():
        refused = json_only()
        if refused:
            return refused
        hint = (request.get_json(silent=True) or {}).get("login_hint")
        if not isinstance(hint, str) or not hint.strip() or len(hint) > 254:
            return jsonify(state="start", message="Type your username or email."), 400
        kiosk.end(session.pop("login", None))
        current = kiosk.begin(hint.strip())
        session["login"] = current.id
        return state_of(current)

    @app.get("/api/state")
    def state():
        return state_of(kiosk.get(session.get("login")))

    @app.post("/api/cancel")
    @app.post("/api/done")
    def done():
        refused = json_only()
        if refused:
            return refused
        kiosk.end(session.pop("login", None))
        return state_of(None)

    @app.post(NOTIFICATION_PATH)
    def notification():
        """CIBA §10.2 ping: authenticated by the client_notification_token we sent."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        body = request.get_json(silent=True) or {}
        auth_req_id = body.get("auth_req_id") if isinstance(body, dict) else None
        target = kiosk.by_auth_req_id(auth_req_id) if isinstance(auth_req_id, str) else None
        if (target is None or scheme.lower() != "bearer" or target.notification_token is None
                or not equal(token.strip(), target.notification_token)):
            return jsonify(error="invalid_request"), 400
        target.notified()
        return "", 204

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.after_request
    def headers(response):
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return app
