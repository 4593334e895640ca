"""The Backchannel Authentication Endpoint's core: CIBA Core 1.0 §7.1 (request), §7.3 (response),
§13 (errors). The web layer authenticates the client and hands over the form; nothing here
knows Flask.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from joserfc import jwt
from joserfc.errors import ExpiredTokenError as JoseExpired, JoseError
from joserfc.jwt import JWTClaimsRegistry

from .. import jsonsafe
from ..notify import LoginRequestEvent
from ..security import digest, new_id
from ..storage import ciba_requests
from ..storage.models import CibaRequest, User
from . import errors, fapi, request_object
from .clients import CIBA_GRANT_TYPE, RegisteredClient
from .keys import SUPPORTED_ALGS
from .limits import check_pending_caps

if TYPE_CHECKING:
    from ..provider import Provider

# RFC 6750 §2.1 b64token, the syntax CIBA §7.1 requires of client_notification_token.
B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


@dataclass
class Created:
    auth_req_id: str
    request: Any  # the stored columns, read-only (storage.ciba_requests.insert)
    user: User
    channel: str = ""  # the channel that announced it ("console": no device; "": none at all)


class BackchannelAuthentication:
    def __init__(self, provider: "Provider") -> None:
        self.p = provider

    def handle(self, client: RegisteredClient, form: Mapping[str, str]) -> dict:
        """Validate, store and dispatch one request; return the §7.3 response body."""
        created = self.create(client, form)
        req = created.request
        body = {"auth_req_id": created.auth_req_id,
                "expires_in": int(round(req.expires_at - req.created_at))}
        if req.delivery_mode in ("poll", "ping"):
            body["interval"] = req.interval  # CIBA §7.3: for poll and ping modes
        if self.p.settings.report_delivery:
            # Extension (README): "device" or "console" (no enrolled device: the person can only
            # answer through the approval link the provider logs), so the client can say so.
            # Clients ignore response parameters they do not know (RFC 6749 §5.1).
            body["ciba_stack_delivery"] = ("device" if created.channel not in ("console", "")
                                           else "console")
        return body

    def create(self, client: RegisteredClient, form: Mapping[str, str]) -> Created:
        s_ = self.p.settings
        # CIBA §7.1: the client must be registered for the CIBA grant (§13 unauthorized_client).
        if not client.check_grant_type(CIBA_GRANT_TYPE):
            raise errors.UnauthorizedClientError(
                "The client is not registered for the CIBA grant type")
        signed = "request" in form
        if signed:
            form = request_object.unpack(self.p, client, form)
        elif client.row.backchannel_authentication_request_signing_alg:
            # CIBA §4: the client registered to send signed authentication requests.
            raise errors.InvalidRequestError("This client must send a signed authentication "
                                             "request (the request parameter)")
        if client.row.fapi_ciba:
            fapi.check_request(signed, form)
        scope = self._scope(client, form.get("scope"))
        mode = client.row.delivery_mode
        token = form.get("client_notification_token")
        if mode in ("ping", "push"):
            # CIBA §7.1: REQUIRED if the Client is registered to use Ping or Push modes.
            if not token:
                raise errors.InvalidRequestError("Missing client_notification_token")
            if len(token) > 1024 or not B64TOKEN.match(token):
                raise errors.InvalidRequestError("Malformed client_notification_token")
        binding_message = form.get("binding_message")
        if binding_message is not None:
            problem = self.p.validate_binding_message(binding_message, s_)
            if problem:
                raise errors.InvalidBindingMessageError(errors.safe_description(problem))
        lifetime = self._lifetime(client, form.get("requested_expiry"))
        authorization_details = self._authorization_details(form.get("authorization_details"))
        now = self.p.clock.now()
        user = self._user(client, form)
        if user.disabled:
            raise errors.AccessDeniedError("The user cannot be authenticated", status_code=403)
        check_pending_caps(self.p.db, s_, client.client_id, user.id, now)
        if client.row.user_code_required:
            # CIBA §7.1 user_code, §13 missing_user_code / invalid_user_code.
            code = form.get("user_code")
            if not code:
                raise errors.MissingUserCodeError("user_code is required for this client")
            verifier = self.p.user_code_verifier
            with self.p.db.session() as s:
                if verifier is None or not verifier(s, user, code):
                    raise errors.InvalidUserCodeError("user_code is invalid")
        auth_req_id = new_id(32)
        approval_token = new_id(32)
        # Durable before the answer: one INSERT in one short transaction.
        req = ciba_requests.insert(
            self.p.db, id=uuid.uuid4().hex, auth_req_id_hash=digest(auth_req_id),
            device_request_id=new_id(24), client_id=client.client_id, user_id=user.id,
            scope=scope, acr_values=form.get("acr_values") or None,
            binding_message=binding_message,
            authorization_details=json.dumps(authorization_details)
            if authorization_details is not None else None,
            delivery_mode=mode, client_notification_token=token,
            auth_req_id_sealed=self.p.box.seal(auth_req_id) if mode != "poll" else None,
            created_at=now, expires_at=now + lifetime,
            interval=client.row.polling_interval or s_.polling_interval,
            approval_token_hash=digest(approval_token), status="pending")
        # The cached channel choice (directory: the user's newest device), no query here.
        channel_mode = self.p.channel_mode_for(user)
        self.p.notifier.request_created(
            self.event(req, user, client.name, approval_token, client_uri=client.row.client_uri,
                       logo_uri=client.row.logo_uri), channel_mode)
        channels = self.p.notifier.channels_for(channel_mode)
        return Created(auth_req_id, req, user, channels[0].name if channels else "")

    def event(self, req: CibaRequest, user: User, client_name: str,
              approval_token: str | None = None, client_uri: str | None = None,
              logo_uri: str | None = None) -> LoginRequestEvent:
        return LoginRequestEvent(
            request_id=req.device_request_id, user_id=user.id, username=user.username,
            client_name=client_name, binding_message=req.binding_message, scope=req.scope,
            acr_values=req.acr_values,
            authorization_details=json.loads(req.authorization_details)
            if req.authorization_details else None,
            created_at=req.created_at, expires_at=req.expires_at,
            approval_url=f"{self.p.issuer}/approve/{approval_token}" if approval_token else None,
            client_uri=client_uri, logo_uri=logo_uri)

    def _scope(self, client: RegisteredClient, scope: str | None) -> str:
        if not scope:
            raise errors.InvalidRequestError("Missing scope")
        requested = scope.split()
        # CIBA §7.1: CIBA authentication requests MUST contain the openid scope value.
        if "openid" not in requested:
            raise errors.InvalidScopeError("The scope must contain openid")
        allowed = set(client.row.scope.split())
        unknown = [s for s in requested if s not in allowed or s not in self.p.scopes_supported]
        if unknown:
            raise errors.InvalidScopeError(
                errors.safe_description("Scope not allowed: " + " ".join(unknown)))
        return " ".join(dict.fromkeys(requested))

    def _lifetime(self, client: RegisteredClient, requested_expiry: str | None) -> int:
        default = client.row.ciba_lifetime or self.p.settings.ciba_lifetime
        if requested_expiry is None:
            return default
        text = requested_expiry.strip()
        # CIBA §7.1: "A positive integer"; a JSON number or numeric string are both accepted.
        if not text.isdigit() or int(text) <= 0:
            raise errors.InvalidRequestError("requested_expiry must be a positive integer")
        return min(int(text), self.p.settings.max_requested_expiry)

    def _authorization_details(self, raw: str | None) -> list | None:
        if raw is None:
            return None
        try:
            value = jsonsafe.loads(raw, self.p.settings.json_max_depth)
        except jsonsafe.JSONInputError as exc:
            raise errors.InvalidRequestError(f"authorization_details: {exc}") from None
        # RFC 9396 §2: a JSON array of objects each with a "type".
        if not isinstance(value, list) or not all(
                isinstance(d, dict) and isinstance(d.get("type"), str) for d in value):
            raise errors.InvalidRequestError("authorization_details must be an array of objects "
                                             "with a type")
        return value

    def _user(self, client: RegisteredClient, form: Mapping[str, str]) -> User:
        hints = [k for k in ("login_hint", "id_token_hint", "login_hint_token") if form.get(k)]
        # CIBA §7.1: exactly one of the three hints.
        if len(hints) != 1:
            raise errors.InvalidRequestError(
                "Exactly one of login_hint, id_token_hint and login_hint_token is required")
        kind, value = hints[0], form[hints[0]]
        if kind == "login_hint":
            user = self.p.find_user(value)
        elif kind == "id_token_hint":
            user = self.p.directory.user(self._id_token_hint_subject(client, value))
        else:
            user = self._login_hint_token_user(client, value)
        if user is None:
            raise errors.UnknownUserIdError("No user matches the hint")
        return user

    def _id_token_hint_subject(self, client: RegisteredClient, token: str) -> str:
        """An ID token we issued to this client; expiry is not held against it (OIDC §3.1.2.1)."""
        try:
            if not jsonsafe.compact_jws_ok(token, self.p.settings.json_max_depth):
                raise ValueError("malformed JWS")
            decoded = jwt.decode(token, self.p.keys.public_keyset(), algorithms=list(SUPPORTED_ALGS))
        except (JoseError, ValueError, TypeError):
            raise errors.InvalidRequestError("id_token_hint is not a valid ID token") from None
        claims = decoded.claims
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if claims.get("iss") != self.p.issuer or client.client_id not in auds \
                or not isinstance(claims.get("sub"), str):
            raise errors.InvalidRequestError("id_token_hint was not issued to this client")
        return claims["sub"]

    def _login_hint_token_user(self, client: RegisteredClient, token: str) -> User | None:
        """A JWT signed by the client (its JWKS, or its secret for client_secret_jwt) whose
        ``sub_id`` is an RFC 9493 subject identifier of format username or email."""
        try:
            if client.row.auth_method == "client_secret_jwt":
                key, algs = client.shared_secret_key(), ["HS256", "HS384", "HS512"]
            else:
                key, algs = client.public_keys(), ["RS256", "PS256", "ES256"]
            if not jsonsafe.compact_jws_ok(token, self.p.settings.json_max_depth):
                raise ValueError("malformed JWS")
            decoded = jwt.decode(token, key, algorithms=algs)
        except (JoseError, ValueError, TypeError, LookupError):
            raise errors.InvalidRequestError("login_hint_token could not be verified") from None
        try:
            JWTClaimsRegistry(now=int(self.p.clock.now()), leeway=0,
                              exp={"essential": True}).validate(decoded.claims)
        except JoseExpired:
            raise errors.ExpiredLoginHintTokenError("login_hint_token has expired") from None
        except JoseError:
            raise errors.InvalidRequestError("login_hint_token lacks a valid exp") from None
        sub_id = decoded.claims.get("sub_id")
        if not isinstance(sub_id, dict):
            raise errors.InvalidRequestError("login_hint_token has no sub_id")
        fmt = sub_id.get("format")
        if fmt == "email" and isinstance(sub_id.get("email"), str):
            return self.p.directory.user_by_username_or_email(sub_id["email"])
        if fmt == "username" and isinstance(sub_id.get("username"), str):
            return self.p.directory.user_by_username(sub_id["username"])
        raise errors.InvalidRequestError("login_hint_token sub_id format is not supported")
