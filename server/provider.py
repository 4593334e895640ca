"""The provider's object graph: what one provider process is made of, as typed attributes.

``Provider(settings, clock, policy)`` holds what every service stands on: the settings, the
clock, the CIBA policy, the issuer, the instance secret and the database. The services (caches,
keys, tokens, channels, the outbox, the authorization server, devices, Gotify) are built and set
here by ``server.wiring.build_provider``, in one place and order; the optional ones stay None
when they are off. The web layer reaches it as ``current_provider()``.

This module imports the services (for these attributes' types), so the services never import
it: each states what it uses of the provider as a protocol that this class satisfies
(``ports.ProviderCore``, ``oauth.policy.PolicyProvider``, ``oauth.context.OAuthProvider``).
Only the layers above them (wiring, web, the operator modules, TLS, CLI) name ``Provider``.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable


from .clock import Clock
from .config import Settings
from .oauth.clients import RegisteredClient, SecretCache
from .oauth.policy import SCOPE_TEXT as SCOPES, CibaPolicy, PolicyContext, UserCodeVerifier, \
    load as load_policy
from .security import SecretBox
from .storage import Database, clients as client_repo
from .storage.models import CibaRequest, User

if TYPE_CHECKING:
    from .devices.housekeeping import Housekeeper
    from .devices.service import DeviceService
    from .notify.bus import InProcessBus
    from .notify.gotify_channel import GotifyChannel
    from .notify.gotify_health import GotifyStatus
    from .notify import Notifier
    from .notify.console import ConsoleChannel
    from .notify.hub import Hub
    from .oauth.client_jwks import JwksCache
    from .oauth.keys import KeyRing
    from .oauth.outbox import Outbox
    from .oauth.polling import PollTracker
    from .oauth.server import AuthorizationServer
    from .oauth.tokens import TokenIssuer
    from .passkeys import Passkeys
    from .signin_guard import SigninGuard
    from .storage.directory import Directory

log = logging.getLogger(__name__)


class Provider:
    # The core services, set by server.wiring.build_provider (in its order).
    directory: "Directory"  # clients, users, devices cached per process; any write empties it
    polls: "PollTracker"  # the last poll of each pending request (slow_down, no DB write)
    keys: "KeyRing"  # signing keys, rotated by the CLI
    tokens: "TokenIssuer"  # ID, access and refresh tokens
    jwks_cache: "JwksCache"  # clients' jwks_uri documents
    client_ca: Any  # RFC 8705 §2.1: the CAs whose certificates tls_client_auth accepts
    signin_guard: "SigninGuard"  # password guessing limits
    notifier: "Notifier"  # channels that announce requests to the person
    console: "ConsoleChannel"  # the approval link in the log, the fallback channel
    outbox: "Outbox"  # ping and push deliveries (CIBA §10.2, §10.3)
    authorization: "AuthorizationServer"  # Authlib: grants, endpoints, client authentication
    # Optional services, set by build_provider; None while (or when) they are off.
    devices: "DeviceService | None" = None  # enrollment, device calls, signed decisions
    bus: "InProcessBus | None" = None  # events between provider processes (in-process or Redis)
    hub: "Hub | None" = None  # this process's device WebSockets
    housekeeper: "Housekeeper | None" = None  # expiries and last-seen flushes
    gotify: "GotifyStatus | None" = None  # set when CIBA_GOTIFY_URL is
    gotify_channel: "GotifyChannel | None" = None
    user_codes: "UserCodeVerifier | None" = None  # CIBA §7.1 user_code: device TOTPs

    def __init__(self, settings: Settings, clock: Clock | None = None,
                 policy: CibaPolicy | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        # The CIBA policy hooks (oauth/policy.py): given, or named by the settings.
        self.policy = policy or load_policy(settings)
        self.policy_context = PolicyContext(self)  # for hooks called outside a request
        Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
        self.issuer = (settings.issuer or "http://127.0.0.1:5000").rstrip("/")
        self.secret_key = settings.secret_key or _instance_secret(settings.instance_path)
        self.box = SecretBox(self.secret_key)
        self.db = Database(settings.resolved_database_url, settings.sqlite_checkpoint_thread)
        self.db.prepare(settings.db_auto_upgrade)
        self.scopes_supported = list(SCOPES) + [
            s for s in settings.api_scopes.split() if s not in SCOPES]
        # CIBA §4 backchannel_token_delivery_modes_supported.
        self.delivery_modes_supported = ["poll", "ping", "push"]
        self._secret_cache = SecretCache(rehash=self._store_secret_hash)
        self._decision_listeners: list[Callable[[CibaRequest], None]] = []

    # -- clients -----------------------------------------------------------------------------
    def get_client(self, client_id: str) -> RegisteredClient | None:
        row = self.directory.client(client_id)
        return RegisteredClient(row, self.box, self._secret_cache, self.jwks_cache) if row else None

    def _store_secret_hash(self, client_id: str, old_hash: str, new_hash: str) -> None:
        # An ORM UPDATE through the session: the directory version is bumped with it.
        with self.db.session() as s:
            client_repo.set_secret_hash(s, client_id, old_hash, new_hash)

    def find_user(self, login_hint: str) -> User | None:
        """The user a login_hint names (the policy's ``resolve_login_hint``)."""
        return self.policy.resolve_login_hint(self.policy_context, login_hint)

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
        """The channel that announces the user's requests (the policy's ``choose_channel``)."""
        return self.policy.choose_channel(self.policy_context, user)

    def describe_scope(self, scope: str) -> str:
        """The plain words a person reads for one requested scope (device, approval page)."""
        return self.policy.consent_text(self.policy_context, scope)

    @cached_property
    def passkeys(self) -> "Passkeys":
        """WebAuthn ceremonies, made on first use (py_webauthn takes a second to import, so
        processes that never see a passkey ceremony never load it)."""
        from .passkeys import Passkeys

        return Passkeys(self)

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
