"""CIBA policies that deployments differ on, as named hooks with documented defaults.

After node-oidc-provider's ``features.ciba`` (processLoginHint, processLoginHintToken,
verifyUserCode, validateBindingMessage, validateRequestContext, triggerAuthenticationDevice):
subclass ``CibaPolicy``, override the hooks that differ, and hand an instance to
``build_provider(settings, policy=...)`` or ``create_app(settings, policy=...)``; or name it in
``CIBA_POLICY="package.module:name"`` (a CibaPolicy subclass or instance). docs/extending.md shows
each hook with an example.

Every hook receives a ``PolicyContext``: the provider, the authenticated client (None outside a
backchannel request) and the request's parameters (after a signed request object was unpacked).
The validating hooks return None to accept, or an error description; the endpoint answers with
the spec's error for that hook (invalid_binding_message, invalid_request). To answer with
another code, raise an error class of server/oauth/errors.py (e.g. ``AccessDeniedError``).
Only the protocol's own checks (client authentication, scope, hints, signatures, expiry) run
before the hooks; what a hook accepts is stored exactly as the client sent it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from ..ports import ProviderCore
from ..storage.models import User

if TYPE_CHECKING:
    from .clients import RegisteredClient

#: ``provider.user_codes``: whether a code is the user's current one (devices/user_codes.py).
UserCodeVerifier = Callable[[User, str], bool]

#: Plain words for the scopes of OpenID Connect (shown to the person: ``consent_text``).
SCOPE_TEXT = {
    "openid": "Confirm who you are",
    "profile": "Your name and username",
    "email": "Your email address",
    "offline_access": "Stay signed in (refresh tokens)",
}


class DeviceChannels(Protocol):
    """What the default ``choose_channel`` asks of the device service (devices/service.py)."""

    def default_channel(self, user: User) -> str: ...


class PolicyProvider(ProviderCore, Protocol):
    """The provider as the hooks see it: its core (server/ports.py: settings, clock, database,
    directory cache, issuer, notifier) and the device services the defaults ask."""

    @property
    def user_codes(self) -> UserCodeVerifier | None: ...  # None without the device service

    @property
    def devices(self) -> DeviceChannels | None: ...


@dataclass(frozen=True, slots=True)
class PolicyContext:
    provider: PolicyProvider
    client: "RegisteredClient | None" = None
    params: Mapping[str, str] = field(default_factory=dict)


class CibaPolicy:
    """The defaults; each hook's docstring says what it decides and what it does unless
    overridden."""

    # -- who is asked (CIBA §7.1: exactly one hint) ------------------------------------------
    def resolve_login_hint(self, ctx: PolicyContext, login_hint: str) -> User | None:
        """The user a ``login_hint`` names, or None (unknown_user_id). Default: a username, or
        an email address (case-insensitive), read from the directory cache (no query)."""
        return ctx.provider.directory.user_by_username_or_email(login_hint.strip())

    def resolve_login_hint_token(self, ctx: PolicyContext, claims: dict[str, Any]) -> User | None:
        """The user a ``login_hint_token`` names, from its claims; the endpoint has already
        verified its signature (the client's keys, or its secret for client_secret_jwt) and its
        ``exp`` (expired_login_hint_token). Default: ``sub_id``, an RFC 9493 subject identifier
        of format ``email`` or ``username``; any other is invalid_request."""
        from .errors import InvalidRequestError

        sub_id = claims.get("sub_id")
        if not isinstance(sub_id, dict):
            raise InvalidRequestError("login_hint_token has no sub_id")
        fmt = sub_id.get("format")
        directory = ctx.provider.directory
        if fmt == "email" and isinstance(sub_id.get("email"), str):
            return directory.user_by_username_or_email(sub_id["email"])
        if fmt == "username" and isinstance(sub_id.get("username"), str):
            return directory.user_by_username(sub_id["username"])
        raise InvalidRequestError("login_hint_token sub_id format is not supported")

    def id_token_hint_subject(self, ctx: PolicyContext, claims: dict[str, Any]) -> str | None:
        """The user id an ``id_token_hint`` names; the endpoint has verified that this provider
        signed it for this client (OIDC Core §3.1.2.1: its expiry is not held against it).
        Default: its ``sub``. Return None for unknown_user_id (e.g. a token older than a
        re-enrollment the deployment wants to refuse)."""
        return claims["sub"]

    # -- what the client may send (CIBA §7.1) ------------------------------------------------
    def verify_user_code(self, ctx: PolicyContext, user: User, user_code: str) -> bool:
        """Whether ``user_code`` proves the user is at the consumption device (clients
        registered with ``backchannel_user_code_parameter``); False is invalid_user_code.
        Default: the current TOTP of any of the user's devices, single use, with a lockout
        after ``user_code_max_failures`` (server/devices/user_codes.py)."""
        verifier = ctx.provider.user_codes
        return verifier is not None and verifier(user, user_code)

    def validate_binding_message(self, ctx: PolicyContext, message: str) -> str | None:
        """An error description (invalid_binding_message) or None. Default (CIBA §7.1:
        "relatively short", "plain text"): 1 to ``binding_message_max_length`` characters, no
        control or format characters, no markup."""
        settings = ctx.provider.settings
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

    def validate_authorization_details(self, ctx: PolicyContext, details: list[dict]) -> str | None:
        """An error description (invalid_request) or None for RFC 9396 ``authorization_details``,
        already checked to be an array of objects each with a string ``type``. Default: every
        type is accepted and shown to the person as sent."""
        return None

    def validate_request_context(self, ctx: PolicyContext, user: User) -> str | None:
        """The last word before the request is stored, with the user known: an error description
        (invalid_request) or None; raise ``AccessDeniedError`` to refuse the person instead.
        Default: accept (a deployment may check ``acr_values``, office hours, the client's
        network, or its own parameters in ``ctx.params``)."""
        return None

    # -- how the person is reached and what they read ----------------------------------------
    def choose_channel(self, ctx: PolicyContext, user: User) -> str:
        """The channel that announces the user's requests: ``websocket``, ``gotify`` or
        ``console`` (a missing channel falls back to console). Default: the user's notification
        mode; "auto" is the push channel of their newest active device, console without one
        (read from the directory cache)."""
        if user.notification_mode:
            return user.notification_mode
        devices = ctx.provider.devices
        return devices.default_channel(user) if devices is not None else "console"

    def consent_text(self, ctx: PolicyContext, scope: str) -> str:
        """The plain words the person reads for one requested scope, on the device and on the
        console approval page. Default: ``SCOPE_TEXT``, else the scope itself."""
        return SCOPE_TEXT.get(scope, scope)


class FunctionHooks(CibaPolicy):
    """The policy the two older settings load: ``CIBA_LOGIN_HINT_RESOLVER`` names
    ``func(session, login_hint) -> User | None`` and ``CIBA_BINDING_MESSAGE_VALIDATOR`` names
    ``func(message, settings) -> str | None``; other hooks keep their defaults."""

    def __init__(self, login_hint_resolver=None, binding_message_validator=None) -> None:
        self.login_hint_resolver = login_hint_resolver
        self.binding_message_validator = binding_message_validator

    def resolve_login_hint(self, ctx: PolicyContext, login_hint: str) -> User | None:
        if self.login_hint_resolver is None:
            return super().resolve_login_hint(ctx, login_hint)
        with ctx.provider.db.session() as s:
            user = self.login_hint_resolver(s, login_hint)
            if user is not None:
                s.expunge(user)
        return user

    def validate_binding_message(self, ctx: PolicyContext, message: str) -> str | None:
        if self.binding_message_validator is None:
            return super().validate_binding_message(ctx, message)
        return self.binding_message_validator(message, ctx.provider.settings)


def load(settings) -> CibaPolicy:
    """The policy the settings name: ``policy`` (CIBA_POLICY) ("module:name", a class or an instance),
    else ``FunctionHooks`` when either older setting is set, else the defaults."""
    if settings.policy:
        found = _import(settings.policy)
        policy = found() if isinstance(found, type) else found
        if not isinstance(policy, CibaPolicy):
            raise TypeError(f"CIBA_POLICY={settings.policy} is not a CibaPolicy")
        return policy
    if settings.login_hint_resolver or settings.binding_message_validator:
        return FunctionHooks(
            _import(settings.login_hint_resolver) if settings.login_hint_resolver else None,
            _import(settings.binding_message_validator)
            if settings.binding_message_validator else None)
    return CibaPolicy()


def _import(path: str) -> Any:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
