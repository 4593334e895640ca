"""Authlib's AuthorizationServer wired to our storage: client lookup and the four client
authentication methods (RFC 6749 §2.3.1 basic/post, RFC 7523 §2.2 client_secret_jwt and
private_key_jwt with single-use jti and aud = issuer or endpoint URL; OIDC Core §9).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest, FlaskOAuth2Request
from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import Response, request as flask_request

from ..storage import clients as client_repo, replay
from .clients import RegisteredClient
from .endpoints import IntrospectionEndpoint, RevocationEndpoint
from .grant import CibaGrant, RefreshTokenGrant

if TYPE_CHECKING:
    from ..provider import Provider


class AuthorizationServer(_AuthorizationServer):
    def __init__(self, provider: "Provider") -> None:
        super().__init__(scopes_supported=provider.scopes_supported)
        self.provider = provider
        for method in ("client_secret_jwt", "private_key_jwt"):
            self.register_client_auth_method(method, ClientAssertion(provider, method))
        self.register_grant(CibaGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.provider.get_client(client_id)

    def authenticate_client(self, request, methods, endpoint="token"):
        # invalid_client is always 401 (CIBA §13, RFC 6749 §5.2), whichever method failed.
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as exc:
            exc.status_code = 401
            raise

    def get_token_grant(self, request):
        # RFC 6749 §5.2: a missing grant_type is a missing parameter, not an unsupported grant.
        if not request.payload.grant_type:
            raise InvalidRequestError("Missing grant_type")
        return super().get_token_grant(request)

    def save_token(self, token, request) -> None:
        return None  # TokenIssuer stores what it issues

    def create_oauth2_request(self, request) -> FlaskOAuth2Request:
        return FlaskOAuth2Request(flask_request)

    def create_json_request(self, request) -> FlaskJsonRequest:
        return FlaskJsonRequest(flask_request)

    def handle_response(self, status_code, payload, headers) -> Response:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        response = Response(body, status=status_code, headers=headers)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    def send_signal(self, name, *args, **kwargs) -> None:
        return None


class _OtherMethod(Exception):
    """The assertion's client is registered for the other JWT method: let that one try."""


class ClientAssertion(JWTBearerClientAssertion):
    """client_secret_jwt and private_key_jwt (RFC 7523 §3, OIDC Core §9)."""

    def __init__(self, provider: "Provider", method: str) -> None:
        super().__init__(validate_jti=True, leeway=provider.settings.clock_skew)
        self.provider = provider
        self.CLIENT_AUTH_METHOD = method

    def __call__(self, query_client, request):
        # Authlib tries each registered method in turn; a client of the other JWT method must
        # not fail here, or private_key_jwt would never be reached after client_secret_jwt.
        try:
            return super().__call__(query_client, request)
        except _OtherMethod:
            return None

    def get_audiences(self) -> list[str]:
        # RFC 7523 §3: aud identifies the authorization server: the issuer or an endpoint URL.
        return self.provider.assertion_audiences()

    def resolve_client_public_key(self, client: RegisteredClient):
        if client.row.auth_method != self.CLIENT_AUTH_METHOD:
            raise _OtherMethod()
        if self.CLIENT_AUTH_METHOD == "client_secret_jwt":
            return client.shared_secret_key()
        try:
            return client.public_keys()
        except LookupError as exc:  # a jwks_uri that cannot be fetched
            raise InvalidClientError(description=str(exc)) from None

    def validate_jti(self, claims, jti) -> bool:
        # RFC 7523 §3 item 7: the jti is single use (kept until the assertion expires).
        p = self.provider
        key = f"client_assertion:{claims['iss']}:{jti}"
        expires = float(claims.get("exp") or 0) + p.settings.clock_skew
        with p.db.session() as s:
            return replay.use_once(s, key, expires, p.clock.now())
