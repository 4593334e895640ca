"""Authlib's AuthorizationServer wired to our storage: the CIBA grant and backchannel endpoint,
refresh tokens, client_credentials, introspection and revocation; client lookup and the six client
authentication methods (RFC 6749 §2.3.1 basic/post, RFC 7523 §2.2 client_secret_jwt and
private_key_jwt with single-use jti and aud = issuer or endpoint URL, OIDC Core §9; RFC 8705 §2
tls_client_auth and self_signed_tls_client_auth).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest, FlaskOAuth2Request
from authlib.oauth2 import AuthorizationServer as _AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import Response, request as flask_request
from joserfc import jwt
from joserfc.errors import JoseError

from .. import jsonsafe
from ..security import digest
from ..storage import replay
from .ciba import BackchannelEndpoint
from .client_credentials import ClientCredentialsGrant
from .clients import RegisteredClient
from .endpoints import IntrospectionEndpoint, RevocationEndpoint
from .fapi import FAPI_ALGS
from .grant import CibaGrant, RefreshTokenGrant
from .mtls import MTLS_METHODS, MutualTlsClientAuth, client_certificate

if TYPE_CHECKING:
    from .context import OAuthProvider


#: Longest an assertion may be valid (exp - now), in seconds; its jti is kept that long.
MAX_ASSERTION_LIFETIME = 3600


class AuthorizationServer(_AuthorizationServer):
    def __init__(self, provider: "OAuthProvider") -> None:
        super().__init__(scopes_supported=provider.scopes_supported)
        self.provider = provider
        for method in ("client_secret_jwt", "private_key_jwt"):
            self.register_client_auth_method(method, ClientAssertion(provider, method))
        for method in MTLS_METHODS:
            self.register_client_auth_method(method, MutualTlsClientAuth(provider, method))
        self.register_grant(CibaGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(BackchannelEndpoint)  # CIBA §7: /bc-authorize
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.provider.get_client(client_id)

    def authenticate_client(self, request, methods, endpoint="token"):
        # invalid_client is always 401 (CIBA §13, RFC 6749 §5.2), whichever method failed.
        try:
            check_basic_header(request.headers.get("Authorization"))
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

    def create_token_response(self, request=None):
        return self.handle_response(*self.token_response_parts(self.create_oauth2_request(request)))

    def token_response_parts(self, request: OAuth2Request) -> tuple[int, Any, list]:
        """Authlib's create_token_response up to, not including, the framework's response:
        (status, body, headers). The fast lane (web/fast_lane.py) renders the same triple."""
        try:
            grant = self.get_token_grant(request)
        except UnsupportedGrantTypeError as error:
            return error(self.get_error_uri(request, error))
        try:
            grant.validate_token_request()
            return grant.create_token_response()
        except OAuth2Error as error:
            return error(self.get_error_uri(request, error))

    def endpoint_response_parts(self, name: str, request: OAuth2Request) -> tuple[int, Any, list]:
        """Authlib's create_endpoint_response for an endpoint registered alone under ``name``
        (the backchannel endpoint), up to the framework's response."""
        endpoint = self._endpoints[name][0]
        request = endpoint.create_endpoint_request(request)
        try:
            return endpoint(request)
        except OAuth2Error as error:
            return error(self.get_error_uri(request, error))

    def create_oauth2_request(self, request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):  # the fast lane's own (web/fast_lane.py)
            return request
        oauth_request = FlaskOAuth2Request(flask_request)
        # RFC 8705: the TLS client certificate of this connection, wherever TLS ended.
        oauth_request.client_certificate = client_certificate(flask_request.environ)
        return oauth_request

    def create_json_request(self, request) -> FlaskJsonRequest:
        return FlaskJsonRequest(flask_request)

    def handle_response(self, status_code, payload, headers) -> Response:
        response = Response(response_body(payload), status=status_code, headers=headers)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    def send_signal(self, name, *args, **kwargs) -> None:
        return None


def response_body(payload: Any) -> str:
    """The body of every response built here, on either lane."""
    return json.dumps(payload) if isinstance(payload, dict) else payload


def check_basic_header(header: str | None) -> None:
    """RFC 7617 §2: ``Basic`` then base64 of UTF-8 ``id:secret``; anything else that claims to be
    Basic is invalid_client here (Authlib's parser raises on an empty or non-UTF-8 one)."""
    if not header:
        return
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        decoded = ""
    if ":" not in decoded:
        raise InvalidClientError(description="Malformed Basic credentials")


class _OtherMethod(Exception):
    """The assertion's client is registered for the other JWT method: let that one try."""


class ClientAssertion(JWTBearerClientAssertion):
    """client_secret_jwt and private_key_jwt (RFC 7523 §3, OIDC Core §9)."""

    def __init__(self, provider: "OAuthProvider", method: str) -> None:
        super().__init__(validate_jti=True, leeway=provider.settings.clock_skew)
        self.provider = provider
        self.CLIENT_AUTH_METHOD = method

    def __call__(self, query_client, request):
        # Authlib tries each registered method in turn; a client of the other JWT method must
        # not fail here, or private_key_jwt would never be reached after client_secret_jwt.
        try:
            client = super().__call__(query_client, request)
        except _OtherMethod:
            return None
        if client is not None and client.row.fapi_ciba:
            # FAPI-CIBA (FAPI 1 Advanced §8.6): client assertions signed with PS256 or ES256.
            alg = self.extract_assertion(request.form["client_assertion"])[0].get("alg")
            if alg not in FAPI_ALGS:
                raise InvalidClientError(description="FAPI clients sign assertions with PS256 "
                                                     "or ES256")
        return client

    def process_assertion_claims(self, assertion, resolve_key):
        # As Authlib's, with the algorithms named: joserfc's default list leaves PS256 out.
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=self.algorithms)
        except JoseError as exc:
            raise InvalidClientError(description=exc.description) from exc
        self.verify_claims(token.claims)
        return token.claims

    @property
    def algorithms(self) -> list[str]:
        if self.CLIENT_AUTH_METHOD == "client_secret_jwt":
            return ["HS256", "HS384", "HS512"]
        return ["RS256", "PS256", "ES256"]

    def get_audiences(self) -> list[str]:
        # RFC 7523 §3: aud identifies the authorization server: the issuer or an endpoint URL.
        return self.provider.assertion_audiences()

    def resolve_client_public_key(self, client: RegisteredClient):
        if client.row.auth_method != self.CLIENT_AUTH_METHOD:
            raise _OtherMethod()
        if self.CLIENT_AUTH_METHOD == "client_secret_jwt":
            return client.shared_secret_key()
        try:
            keys = client.public_keys()
        except LookupError as exc:  # a jwks_uri that cannot be fetched
            raise InvalidClientError(description=str(exc)) from None
        if not client.row.jwks_uri:
            return keys

        def resolve(token):
            # A kid the cached set lacks: the client may have rotated its keys since we
            # fetched them (oauth/client_jwks.py refreshes at most every min_refresh seconds).
            kid = token.headers().get("kid")
            if kid and not any(k.kid == kid for k in keys.keys):
                try:
                    return client.public_keys(refresh=True)
                except LookupError as exc:
                    raise InvalidClientError(description=str(exc)) from None
            return keys

        return resolve

    def extract_assertion(self, assertion: str):
        # Hostile segments (nested 50,000 deep, NaN) fail as a bad assertion, not a 500.
        if not jsonsafe.compact_jws_ok(assertion, self.provider.settings.json_max_depth):
            raise InvalidClientError(description="Invalid JWT assertion.")
        return super().extract_assertion(assertion)

    def verify_claims(self, claims) -> None:
        # RFC 7523 §3 item 4 lets the server reject an exp unreasonably far in the future; its
        # jti would have to be remembered that long (and 10^400 does not fit a float).
        now = self.provider.clock.now()
        exp = claims.get("exp")
        if not jsonsafe.finite_number(exp):
            raise InvalidClientError(description="Invalid claim: exp")
        if exp - now > MAX_ASSERTION_LIFETIME:
            raise InvalidClientError(
                description=f"The assertion exp is more than {MAX_ASSERTION_LIFETIME} s away")
        super().verify_claims(claims)

    def validate_jti(self, claims, jti) -> bool:
        # RFC 7523 §3 item 7: the jti is single use (kept until the assertion expires).
        p = self.provider
        if not isinstance(jti, str) or not jti:
            return False
        key = "client_assertion:" + digest(f"{claims['iss']}\0{jti}")
        expires = float(claims["exp"]) + p.settings.clock_skew
        with p.db.session() as s:
            return replay.use_once(s, key, expires, p.clock.now())
