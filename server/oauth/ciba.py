"""This provider's Backchannel Authentication Endpoint: CIBA Core 1.0 §7.1 (request), §7.3
(response), §13 (errors). The protocol steps are ciba_core's; here are its storage (one INSERT),
signed request objects (§7.1.1), the FAPI-CIBA profile, the pending caps, the hints verified
against our keys and the client's, the policy hooks (policy.py) and the channels that reach the
device. Registered on the authorization server (server.py); nothing here knows Flask.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from joserfc import jwt
from joserfc.errors import ExpiredTokenError as JoseExpired, JoseError
from joserfc.jwt import JWTClaimsRegistry

from .. import jsonsafe
from ..notify import LoginRequestEvent
from ..storage import ciba_requests
from ..storage.models import CibaRequest, User
from . import errors, fapi, request_ids, request_object
from .ciba_core import BackchannelAuthenticationEndpoint, BackchannelAuthenticationRequest
from .clients import AUTH_METHODS, RegisteredClient
from .keys import SUPPORTED_ALGS
from .limits import check_pending_caps
from .policy import PolicyContext

if TYPE_CHECKING:
    from .context import OAuthProvider


class BackchannelEndpoint(BackchannelAuthenticationEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    @property
    def p(self) -> "OAuthProvider":
        return self.server.provider

    def _ctx(self, req: BackchannelAuthenticationRequest) -> PolicyContext:
        """The policy hooks' context, made once per request."""
        if req.context is None:
            req.context = PolicyContext(self.p, req.client, req.params)
        return req.context

    # -- the client and its parameters --------------------------------------------------------
    def request_parameters(self, client: RegisteredClient, request) -> Mapping[str, str]:
        # A plain dict (the view's strict_form checked it): a MultiDict's get raises and catches
        # a KeyError for every parameter the client left out.
        form = request.form.to_dict()
        signed = "request" in form
        if signed:
            form = request_object.unpack(self.p, client, form)
        elif client.row.backchannel_authentication_request_signing_alg:
            # CIBA §4: the client registered to send signed authentication requests.
            raise errors.InvalidRequestError("This client must send a signed authentication "
                                             "request (the request parameter)")
        if client.row.fapi_ciba:
            fapi.check_request(signed, form)
        return form

    def get_delivery_mode(self, client: RegisteredClient) -> str:
        return client.row.delivery_mode

    def get_interval(self, client: RegisteredClient) -> int:
        return client.row.polling_interval or self.p.settings.polling_interval

    def is_user_code_required(self, client: RegisteredClient) -> bool:
        return bool(client.row.user_code_required)

    def get_default_expires_in(self, client: RegisteredClient) -> int:
        return client.row.ciba_lifetime or self.p.settings.ciba_lifetime

    def get_max_expires_in(self, client: RegisteredClient) -> int:
        return self.p.settings.max_requested_expiry

    def load_json(self, raw: str) -> Any:
        # Bounded depth, finite numbers (jsonsafe.py): hostile input is invalid_request.
        try:
            return jsonsafe.loads(raw, self.p.settings.json_max_depth)
        except jsonsafe.JSONInputError as exc:
            raise errors.InvalidRequestError(f"authorization_details: {exc}") from None

    # -- policy hooks -------------------------------------------------------------------------
    def validate_binding_message(self, req: BackchannelAuthenticationRequest,
                                 message: str) -> str | None:
        return self.p.policy.validate_binding_message(self._ctx(req), message)

    def validate_authorization_details(self, req: BackchannelAuthenticationRequest,
                                       details: list) -> str | None:
        return self.p.policy.validate_authorization_details(self._ctx(req), details)

    def resolve_login_hint(self, req: BackchannelAuthenticationRequest, login_hint: str):
        return self.p.policy.resolve_login_hint(self._ctx(req), login_hint)

    def resolve_id_token_hint(self, req: BackchannelAuthenticationRequest, token: str):
        ctx = self._ctx(req)
        subject = self.p.policy.id_token_hint_subject(ctx, self._id_token_hint_claims(req.client,
                                                                                      token))
        return self.p.directory.user(subject) if subject else None

    def resolve_login_hint_token(self, req: BackchannelAuthenticationRequest, token: str):
        claims = self._login_hint_token_claims(req.client, token)
        return self.p.policy.resolve_login_hint_token(self._ctx(req), claims)

    def check_user(self, req: BackchannelAuthenticationRequest) -> None:
        user: User = req.user
        if user.disabled:
            raise errors.AccessDeniedError("The user cannot be authenticated", status_code=403)
        problem = self.p.policy.validate_request_context(self._ctx(req), user)
        if problem:
            raise errors.InvalidRequestError(errors.safe_description(problem))
        check_pending_caps(self.p.db, self.p.settings, req.client.client_id, user.id,
                           self.p.clock.now())

    def verify_user_code(self, req: BackchannelAuthenticationRequest, user: User,
                         user_code: str) -> bool:
        return self.p.policy.verify_user_code(self._ctx(req), user, user_code)

    # -- storage and the device ---------------------------------------------------------------
    def generate_auth_req_id(self) -> str:
        # Stamped with the time (request_ids.py): the storage's unique indexes grow in order.
        return request_ids.new_auth_req_id()

    def save_authentication_request(self, auth_req_id: str,
                                    req: BackchannelAuthenticationRequest) -> Any:
        """Durable before the answer: one INSERT in one short transaction. Returns the stored
        columns and the console channel's approval link token."""
        p, client, user, mode = self.p, req.client, req.user, req.delivery_mode
        now = p.clock.now()
        ids = request_ids.companions(auth_req_id)
        approval_token = ids.approval_token
        row = ciba_requests.insert(
            p.db, id=ids.row_id, auth_req_id_hash=request_ids.key(auth_req_id),
            device_request_id=ids.device_request_id, client_id=client.client_id, user_id=user.id,
            scope=req.scope, acr_values=req.acr_values, binding_message=req.binding_message,
            authorization_details=json.dumps(req.authorization_details)
            if req.authorization_details is not None else None,
            delivery_mode=mode, client_notification_token=req.client_notification_token,
            auth_req_id_sealed=p.box.seal(auth_req_id) if mode != "poll" else None,
            created_at=now, expires_at=now + req.expires_in,
            interval=self.get_interval(client),
            approval_token_hash=request_ids.key(approval_token), status="pending")
        return row, approval_token

    def notify_authentication_device(self, auth_req_id: str,
                                     req: BackchannelAuthenticationRequest, saved: Any) -> str:
        """The channel that announced it ("console": no device; "": none at all)."""
        client, user = req.client, req.user
        row, approval_token = saved
        # The policy's channel choice (default: the directory's newest device, no query).
        channel_mode = self.p.policy.choose_channel(self._ctx(req), user)
        self.p.notifier.announce(user.id, channel_mode, lambda: self.event(
            row, user, client.name, approval_token, client_uri=client.row.client_uri,
            logo_uri=client.row.logo_uri))
        channels = self.p.notifier.channels_for(channel_mode)
        return channels[0].name if channels else ""

    def create_response_body(self, auth_req_id: str, req: BackchannelAuthenticationRequest,
                             saved: Any, notified: str) -> dict:
        body = super().create_response_body(auth_req_id, req, saved, notified)
        if self.p.settings.report_delivery:
            # Extension (README): "device" or "console" (no enrolled device: the person can only
            # answer through the approval link the provider logs), so the client can say so.
            # Clients ignore response parameters they do not know (RFC 6749 §5.1).
            body["ciba_stack_delivery"] = "device" if notified not in ("console", "") \
                else "console"
        return body

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

    # -- hints verified against our keys and the client's -------------------------------------
    def _id_token_hint_claims(self, client: RegisteredClient, token: str) -> dict:
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
        return claims

    def _login_hint_token_claims(self, client: RegisteredClient, token: str) -> dict:
        """The claims of a JWT signed by the client (its JWKS, or its secret for
        client_secret_jwt), unexpired (CIBA §13 expired_login_hint_token)."""
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
        return decoded.claims
