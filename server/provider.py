"""The provider's object graph: settings, clock, storage, keys, channels and policies.

Built once per process by ``create_app``; the web layer reaches it as ``current_provider()``.
Nothing here imports Flask except through the Authlib server adapter.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import Callable

from sqlalchemy.orm import Session

from . import metrics
from .clock import Clock
from .config import Settings
from .notify import Notifier
from .notify.console import ConsoleChannel
from .oauth import hooks
from .oauth.ciba import BackchannelAuthentication
from .oauth.client_jwks import JwksCache
from .oauth.clients import RegisteredClient, SecretCache
from .oauth.mtls import load_ca_bundle
from .oauth.keys import KeyRing
from .oauth.polling import make_tracker
from .oauth.tokens import TokenIssuer
from .security import SecretBox
from .storage import Database, clients as client_repo
from .storage.directory import Directory
from .storage.models import CibaRequest, User

log = logging.getLogger(__name__)

SCOPES = {
    "openid": "Confirm who you are",
    "profile": "Your name and username",
    "email": "Your email address",
    "offline_access": "Stay signed in (refresh tokens)",
}

UserCodeVerifier = Callable[[Session, User, str], bool]


class Provider:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
        self.issuer = (settings.issuer or "http://127.0.0.1:5000").rstrip("/")
        self.secret_key = settings.secret_key or _instance_secret(settings.instance_path)
        self.box = SecretBox(self.secret_key)
        self.db = Database(settings.resolved_database_url)
        self.db.prepare(settings.db_auto_upgrade)
        # Clients, users and devices cached per process; any write anywhere empties it.
        self.directory = Directory(self.db)
        # The last poll of each pending request, for slow_down (no database write per poll).
        self.polls = make_tracker(settings.redis_url, self.issuer)
        self.keys = KeyRing(self.db, self.clock)
        self.keys.ensure()
        self.tokens = TokenIssuer(settings, self.clock, self.db, self.keys, self.issuer)
        self.scopes_supported = list(SCOPES) + [
            s for s in settings.api_scopes.split() if s not in SCOPES]
        # CIBA §4 backchannel_token_delivery_modes_supported.
        self.delivery_modes_supported = ["poll", "ping", "push"]
        self.resolve_login_hint = hooks.load(settings.login_hint_resolver,
                                             hooks.resolve_login_hint)
        self.validate_binding_message = hooks.load(settings.binding_message_validator,
                                                   hooks.validate_binding_message)
        # Set by the devices package once it is wired in (CIBA §7.1 user_code).
        self.user_code_verifier: UserCodeVerifier | None = None
        self.notifier = Notifier()
        self.console = ConsoleChannel()
        self.notifier.register(self.console)
        self._secret_cache = SecretCache(rehash=self._store_secret_hash)
        self.jwks_cache = JwksCache()
        # RFC 8705 §2.1: the CAs whose certificates tls_client_auth accepts.
        self.client_ca = load_ca_bundle(settings.tls_client_ca)
        from .signin_guard import SigninGuard

        self.signin_guard = SigninGuard(self)
        self._decision_listeners: list[Callable[[CibaRequest], None]] = []
        # Functions ``extend(app)`` that add blueprints (devices, demo) to the Flask app.
        self.web_extensions: list[Callable] = []
        self.backchannel = BackchannelAuthentication(self)
        from .oauth.outbox import Outbox

        # Ping and push deliveries (CIBA §10.2, §10.3): a durable outbox; ``outbox.start()``
        # runs its loop in a serving process (it also starts on this process's first decision).
        self.outbox = Outbox(self)
        self.on_decision(self.outbox)
        self.on_decision(lambda req: metrics.decision(req.status))
        from .oauth.server import AuthorizationServer  # imports Flask request adapters

        self.authorization = AuthorizationServer(self)

    # -- clients -----------------------------------------------------------------------------
    def get_client(self, client_id: str) -> RegisteredClient | None:
        row = self.directory.client(client_id)
        return RegisteredClient(row, self.box, self._secret_cache, self.jwks_cache) if row else None

    def _store_secret_hash(self, client_id: str, old_hash: str, new_hash: str) -> None:
        # An ORM UPDATE through the session: the directory version is bumped with it.
        with self.db.session() as s:
            client_repo.set_secret_hash(s, client_id, old_hash, new_hash)

    def find_user(self, login_hint: str) -> User | None:
        """The user a login_hint names: the configured resolver, or the default rule served
        from the directory cache."""
        if self.resolve_login_hint is hooks.resolve_login_hint:
            return self.directory.user_by_username_or_email(login_hint.strip())
        with self.db.session() as s:
            user = self.resolve_login_hint(s, login_hint)
            if user is not None:
                s.expunge(user)
        return user

    # -- endpoints ---------------------------------------------------------------------------
    def endpoint(self, path: str) -> str:
        return self.issuer + path

    def assertion_audiences(self) -> list[str]:
        paths = ("/token", "/bc-authorize", "/introspect", "/revoke", "/bc-cancel")
        audiences = [self.issuer] + [self.endpoint(path) for path in paths]
        mtls = self.settings.mtls_base_url.rstrip("/")
        if mtls and mtls != self.issuer:
            # RFC 8705 §5: a client may name the mTLS alias of the endpoint it calls.
            audiences += [mtls + path for path in paths]
        return audiences

    # -- channels ----------------------------------------------------------------------------
    def channel_mode_for(self, user: User) -> str:
        """The user's notification mode; devices code refines the empty default."""
        return user.notification_mode or self.default_channel(user)

    def default_channel(self, user: User) -> str:
        return "console"

    def on_decision(self, listener: Callable[[CibaRequest], None]) -> None:
        self._decision_listeners.append(listener)

    def after_decision(self, req: CibaRequest) -> None:
        for listener in self._decision_listeners:
            try:
                listener(req)
            except Exception:
                log.exception("decision listener failed for request %s", req.id[:8])


def _instance_secret(instance_path: str) -> str:
    """A random secret generated on first start and kept (0600) in the instance folder.

    O_EXCL makes concurrent first starts (several gunicorn workers) agree on one secret.
    """
    path = Path(instance_path) / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    for _ in range(50):
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.02)  # another process is writing it
    raise RuntimeError(f"{path} is empty")
