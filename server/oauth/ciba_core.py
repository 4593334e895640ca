"""CIBA on Authlib: the Backchannel Authentication Endpoint (CIBA Core 1.0 §7) and the CIBA grant
(§10.1, §11), protocol steps only. Storage and policy sit behind methods a provider overrides, as
in Authlib's ``DeviceCodeGrant`` (``query_device_credential``, ``should_slow_down``); the endpoint
is registered on the authorization server like Authlib's revocation endpoint::

    server.register_endpoint(MyBackchannelEndpoint)      # POST /bc-authorize:
    server.register_grant(MyCibaGrant)                   #   server.create_endpoint_response(
                                                         #       "backchannel_authentication")

This module imports Authlib and the error classes beside it, nothing else of this provider, so
it can be lifted into any Authlib-based provider; docs/extending.md has a whole Flask app built
on it with in-memory storage. Push mode's token delivery (§10.3) and ping's notification
(§10.2) happen when the person decides, outside these classes.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from authlib.oauth2.rfc6749 import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.endpoint import Endpoint, EndpointRequest

from . import errors

CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
#: CIBA §7.1: exactly one of these names the end-user.
HINTS = ("login_hint", "id_token_hint", "login_hint_token")
#: RFC 6750 §2.1 b64token, the syntax CIBA §7.1 requires of client_notification_token.
B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


class AuthRequestMixin:
    """What the grant needs of a stored authentication request (as Authlib's
    ``DeviceCredentialMixin``). ``get_status`` is the stored status: pending, approved, denied,
    cancelled or exchanged (the grant notices expiry itself from ``get_expires_at``)."""

    def get_client_id(self) -> str:
        raise NotImplementedError()

    def get_status(self) -> str:
        raise NotImplementedError()

    def get_expires_at(self) -> float:
        raise NotImplementedError()

    def get_scope(self) -> str:
        raise NotImplementedError()

    def get_user(self) -> Any:
        """The end-user who approved (None when they no longer exist: invalid_grant)."""
        raise NotImplementedError()


@dataclass
class BackchannelAuthenticationRequest(EndpointRequest):
    """A validated authentication request (CIBA §7.1), handed to ``save_authentication_request``."""

    params: Mapping[str, str] = field(default_factory=dict)
    user: Any = None
    scope: str = ""
    binding_message: str | None = None
    user_code: str | None = None
    acr_values: str | None = None
    authorization_details: list | None = None
    delivery_mode: str = "poll"
    client_notification_token: str | None = None
    expires_in: int = 0
    interval: int | None = None
    #: The provider's own per-request state (its policy context, an approval link, ...).
    context: Any = None


class BackchannelAuthenticationEndpoint(Endpoint):
    """POST /bc-authorize (CIBA §7). Override ``save_authentication_request`` and the
    ``resolve_*`` methods for the hints your clients send; the rest has working defaults."""

    ENDPOINT_NAME = "backchannel_authentication"
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    #: Seconds a request lives when the client asks nothing else (§7.3 expires_in) ...
    EXPIRES_IN = 300
    #: ... and at most, whatever requested_expiry says.
    MAX_EXPIRES_IN = 1800
    #: Minimum seconds between polls (§7.3 interval) for poll and ping clients.
    INTERVAL = 5
    BINDING_MESSAGE_MAX_LENGTH = 100

    # -- the protocol ------------------------------------------------------------------------
    def validate_request(self, request) -> BackchannelAuthenticationRequest:
        client = self.authenticate_endpoint_client(request)
        # CIBA §7.1: the client must be registered for the CIBA grant (§13 unauthorized_client).
        if not client.check_grant_type(CIBA_GRANT_TYPE):
            raise errors.UnauthorizedClientError(
                "The client is not registered for the CIBA grant type")
        params = self.request_parameters(client, request)
        mode = self.get_delivery_mode(client)
        req = BackchannelAuthenticationRequest(
            request=request, client=client, params=params, delivery_mode=mode,
            scope=self.validate_scope(client, params.get("scope")),
            acr_values=params.get("acr_values") or None)
        token = params.get("client_notification_token")
        if mode in ("ping", "push"):
            # CIBA §7.1: REQUIRED if the Client is registered to use Ping or Push modes.
            if not token:
                raise errors.InvalidRequestError("Missing client_notification_token")
            if len(token) > 1024 or not B64TOKEN.match(token):
                raise errors.InvalidRequestError("Malformed client_notification_token")
            req.client_notification_token = token
        req.binding_message = params.get("binding_message")
        if req.binding_message is not None:
            problem = self.validate_binding_message(req, req.binding_message)
            if problem:
                raise errors.InvalidBindingMessageError(errors.safe_description(problem))
        req.expires_in = self.get_expires_in(client, params.get("requested_expiry"))
        raw_details = params.get("authorization_details")
        if raw_details is not None:
            req.authorization_details = self.parse_authorization_details(raw_details)
            problem = self.validate_authorization_details(req, req.authorization_details)
            if problem:
                raise errors.InvalidRequestError(errors.safe_description(problem))
        req.user = self.authenticate_user(req)
        self.check_user(req)
        if self.is_user_code_required(client):
            # CIBA §7.1 user_code, §13 missing_user_code / invalid_user_code.
            req.user_code = params.get("user_code")
            if not req.user_code:
                raise errors.MissingUserCodeError("user_code is required for this client")
            if not self.verify_user_code(req, req.user, req.user_code):
                raise errors.InvalidUserCodeError("user_code is invalid")
        if mode in ("poll", "ping"):
            req.interval = self.get_interval(client)
        return req

    def create_response(self, req: BackchannelAuthenticationRequest):
        auth_req_id = self.generate_auth_req_id()
        saved = self.save_authentication_request(auth_req_id, req)
        notified = self.notify_authentication_device(auth_req_id, req, saved)
        body = self.create_response_body(auth_req_id, req, saved, notified)
        return 200, body, [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                           ("Pragma", "no-cache")]  # CIBA §7.3

    def authenticate_user(self, req: BackchannelAuthenticationRequest) -> Any:
        """The user of the one hint (CIBA §7.1), or unknown_user_id (§13)."""
        hints = [name for name in HINTS if req.params.get(name)]
        if len(hints) != 1:
            raise errors.InvalidRequestError(
                "Exactly one of login_hint, id_token_hint and login_hint_token is required")
        kind, value = hints[0], req.params[hints[0]]
        resolve = {"login_hint": self.resolve_login_hint,
                   "id_token_hint": self.resolve_id_token_hint,
                   "login_hint_token": self.resolve_login_hint_token}[kind]
        user = resolve(req, value)
        if user is None:
            raise errors.UnknownUserIdError("No user matches the hint")
        return user

    def validate_scope(self, client, scope: str | None) -> str:
        """The requested scope, deduplicated; invalid_scope when it lacks openid (CIBA §7.1) or
        names a scope the client may not ask for."""
        if not scope:
            raise errors.InvalidRequestError("Missing scope")
        requested = scope.split()
        if "openid" not in requested:
            raise errors.InvalidScopeError("The scope must contain openid")
        allowed = set(client.get_allowed_scope(scope).split())
        supported = self.server.scopes_supported
        unknown = [s for s in requested if s not in allowed or (supported and s not in supported)]
        if unknown:
            raise errors.InvalidScopeError(
                errors.safe_description("Scope not allowed: " + " ".join(unknown)))
        return " ".join(dict.fromkeys(requested))

    def get_expires_in(self, client, requested_expiry: str | None) -> int:
        """§7.1 requested_expiry ("a positive integer"; a JSON number or numeric string), at
        most ``get_max_expires_in``; ``get_default_expires_in`` without one."""
        if requested_expiry is None:
            return self.get_default_expires_in(client)
        text = requested_expiry.strip()
        if not text.isdigit() or int(text) <= 0:
            raise errors.InvalidRequestError("requested_expiry must be a positive integer")
        return min(int(text), self.get_max_expires_in(client))

    def parse_authorization_details(self, raw: str) -> list:
        """RFC 9396 §2: a JSON array of objects each with a type."""
        value = self.load_json(raw)
        if not isinstance(value, list) or not all(
                isinstance(d, dict) and isinstance(d.get("type"), str) for d in value):
            raise errors.InvalidRequestError("authorization_details must be an array of objects "
                                             "with a type")
        return value

    def create_response_body(self, auth_req_id: str, req: BackchannelAuthenticationRequest,
                             saved: Any, notified: Any) -> dict:
        """CIBA §7.3: auth_req_id, expires_in, and interval for poll and ping."""
        body: dict[str, Any] = {"auth_req_id": auth_req_id, "expires_in": req.expires_in}
        if req.interval is not None:
            body["interval"] = req.interval
        return body

    # -- what a provider decides (override) ---------------------------------------------------
    def authenticate_endpoint_client(self, request):
        """The client, authenticated as at the token endpoint (CIBA §7.1)."""
        return self.server.authenticate_client(request, self.CLIENT_AUTH_METHODS,
                                               self.ENDPOINT_NAME)

    def request_parameters(self, client, request) -> Mapping[str, str]:
        """The request's parameters; override to unpack signed request objects (§7.1.1)."""
        return request.form

    def get_delivery_mode(self, client) -> str:
        """The client's registered backchannel_token_delivery_mode (CIBA §4)."""
        return client.client_metadata.get("backchannel_token_delivery_mode", "poll")

    def get_interval(self, client) -> int:
        return self.INTERVAL

    def get_default_expires_in(self, client) -> int:
        return self.EXPIRES_IN

    def get_max_expires_in(self, client) -> int:
        return self.MAX_EXPIRES_IN

    def load_json(self, raw: str) -> Any:
        """A JSON parameter's value; invalid_request when it is not JSON."""
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise errors.InvalidRequestError("authorization_details is not JSON") from None

    def is_user_code_required(self, client) -> bool:
        """backchannel_user_code_parameter (CIBA §4)."""
        return bool(client.client_metadata.get("backchannel_user_code_parameter"))

    def resolve_login_hint(self, req: BackchannelAuthenticationRequest, login_hint: str) -> Any:
        raise errors.InvalidRequestError("login_hint is not supported")

    def resolve_id_token_hint(self, req: BackchannelAuthenticationRequest, token: str) -> Any:
        raise errors.InvalidRequestError("id_token_hint is not supported")

    def resolve_login_hint_token(self, req: BackchannelAuthenticationRequest, token: str) -> Any:
        raise errors.InvalidRequestError("login_hint_token is not supported")

    def validate_binding_message(self, req: BackchannelAuthenticationRequest,
                                 message: str) -> str | None:
        """An error description (invalid_binding_message) or None."""
        if not message.strip() or len(message) > self.BINDING_MESSAGE_MAX_LENGTH:
            return f"binding_message must be 1 to {self.BINDING_MESSAGE_MAX_LENGTH} characters"
        return None

    def validate_authorization_details(self, req: BackchannelAuthenticationRequest,
                                       details: list) -> str | None:
        return None

    def check_user(self, req: BackchannelAuthenticationRequest) -> None:
        """Raise to refuse the identified user (e.g. AccessDeniedError with status 403)."""

    def verify_user_code(self, req: BackchannelAuthenticationRequest, user: Any,
                         user_code: str) -> bool:
        return False

    def generate_auth_req_id(self) -> str:
        """CIBA §7.3: unguessable, at least 128 bits (here 256)."""
        return secrets.token_urlsafe(32)

    def save_authentication_request(self, auth_req_id: str,
                                    req: BackchannelAuthenticationRequest) -> Any:
        """Store the request, durable before the answer; return what the other hooks need."""
        raise NotImplementedError()

    def notify_authentication_device(self, auth_req_id: str,
                                     req: BackchannelAuthenticationRequest, saved: Any) -> Any:
        """Reach the user's authentication device (node-oidc-provider's
        triggerAuthenticationDevice); it must not fail the request."""
        return None


class CibaGrant(BaseGrant, TokenEndpointMixin):
    """grant_type=urn:openid:params:grant-type:ciba with auth_req_id (CIBA §10.1, §11)."""

    GRANT_TYPE = CIBA_GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        auth_req_id = self.request.form.get("auth_req_id")
        client = self.authenticate_token_endpoint_client()
        self.request.client = client
        if not client.check_grant_type(self.GRANT_TYPE):
            raise errors.UnauthorizedClientError(
                "The client is not registered for the CIBA grant type")
        if not auth_req_id:
            raise errors.InvalidRequestError("Missing auth_req_id")
        if self.get_delivery_mode(client) == "push":
            # CIBA §10.3: push mode clients receive tokens at their notification endpoint.
            raise errors.UnauthorizedClientError("Push mode clients do not poll the token endpoint")
        self.request.auth_req_id = auth_req_id
        self.validate_client_binding(client)

    def create_token_response(self):
        client = self.request.client
        now = self.now()
        req = self.query_auth_request(self.request.auth_req_id)
        # CIBA §11 invalid_grant: unknown, or issued to another client.
        if req is None or req.get_client_id() != client.get_client_id():
            raise errors.InvalidGrantError("Unknown auth_req_id")
        status = req.get_status()
        if status == "exchanged":
            # A replay of an exchanged auth_req_id: revoke what it produced (RFC 6749 §10.5
            # by analogy with authorization codes) and refuse.
            self.revoke_exchanged(req)
            raise errors.InvalidGrantError("auth_req_id was already used")
        if status in ("pending", "approved") and req.get_expires_at() <= now:
            raise errors.ExpiredTokenError("The auth_req_id has expired")
        if status == "denied":
            raise errors.AccessDeniedError("The end-user denied the authorization request")
        if status == "cancelled":
            raise errors.AccessDeniedError("The authentication request was cancelled")
        if status == "pending":
            # CIBA §11 slow_down when polled faster than the interval; else pending.
            if self.should_slow_down(req, now):
                raise errors.SlowDownError("Polling too fast; wait the interval between requests")
            raise errors.AuthorizationPendingError("The end-user has not yet been authenticated")
        if status != "approved":
            raise errors.ExpiredTokenError("The auth_req_id has expired")
        user = req.get_user()
        if user is None:
            raise errors.InvalidGrantError("Unknown auth_req_id")
        token = self.exchange(req, user)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    # -- storage and policy (override) -------------------------------------------------------
    def now(self) -> float:
        return time.time()

    def get_delivery_mode(self, client) -> str:
        return client.client_metadata.get("backchannel_token_delivery_mode", "poll")

    def validate_client_binding(self, client) -> None:
        """Checks on the connection before the auth_req_id is used (e.g. RFC 8705 §3)."""

    def query_auth_request(self, auth_req_id: str) -> AuthRequestMixin | None:
        raise NotImplementedError()

    def should_slow_down(self, auth_request: AuthRequestMixin, now: float) -> bool:
        """Whether this poll came sooner than the interval after the last (RFC 8628 §3.5)."""
        return False

    def revoke_exchanged(self, auth_request: AuthRequestMixin) -> None:
        """Revoke the tokens an exchanged auth_req_id produced (it was replayed)."""

    def mark_exchanged(self, auth_request: AuthRequestMixin) -> bool:
        """Record the single use (CIBA §11); False when another poll won the race."""
        raise NotImplementedError()

    def exchange(self, auth_request: AuthRequestMixin, user: Any) -> dict:
        """Tokens for an approved request, once: Authlib's token generator and save_token."""
        if not self.mark_exchanged(auth_request):
            raise errors.InvalidGrantError("auth_req_id was already used")
        token = self.generate_token(
            user=user, scope=auth_request.get_scope(),
            include_refresh_token=self.request.client.check_grant_type("refresh_token"))
        self.save_token(token)
        return token
