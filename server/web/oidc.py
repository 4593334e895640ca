"""Discovery (OIDC Discovery 1.0 §3, RFC 8414, CIBA §4), JWKS and UserInfo (OIDC Core §5.3)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..oauth.cancel import CANCEL_PATH, METADATA_NAME as CANCEL_METADATA_NAME
from ..oauth.clients import AUTH_METHODS, GRANT_TYPES
from ..oauth.keys import SUPPORTED_ALGS
from ..oauth.mtls import client_certificate, confirms
from ..oauth.request_object import REQUEST_OBJECT_ALGS
from ..storage import users
from .context import current_provider

bp = Blueprint("oidc", __name__)

#: RFC 8705 §5 mtls_endpoint_aliases: the endpoints a client calls with its certificate.
MTLS_ALIASES = {"token_endpoint": "/token", "backchannel_authentication_endpoint": "/bc-authorize",
                "introspection_endpoint": "/introspect", "revocation_endpoint": "/revoke",
                "userinfo_endpoint": "/userinfo", CANCEL_METADATA_NAME: CANCEL_PATH}


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    p = current_provider()
    e = p.endpoint
    metadata = {
        "issuer": p.issuer,
        "jwks_uri": e("/jwks"),
        "token_endpoint": e("/token"),
        "userinfo_endpoint": e("/userinfo"),
        "introspection_endpoint": e("/introspect"),
        "revocation_endpoint": e("/revoke"),
        # RFC 8414 §2 / RFC 7591: protected by initial access tokens.
        "registration_endpoint": e("/register"),
        # CIBA §4: backchannel metadata.
        "backchannel_authentication_endpoint": e("/bc-authorize"),
        "backchannel_token_delivery_modes_supported": p.delivery_modes_supported,
        "backchannel_user_code_parameter_supported": True,
        "grant_types_supported": list(GRANT_TYPES),
        "scopes_supported": p.scopes_supported,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "PS256", "ES256"],
        # CIBA §4: signed authentication requests (§7.1.1); asymmetric algorithms only.
        "backchannel_authentication_request_signing_alg_values_supported":
            list(REQUEST_OBJECT_ALGS),
        # RFC 8705 §3.3: access tokens bound to the client's TLS certificate.
        "tls_client_certificate_bound_access_tokens": True,
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "name",
                             "preferred_username", "email", "email_verified"],
        "authorization_details_types_supported": [],
    }
    # An extension (server/oauth/cancel.py): the client withdraws its own pending request.
    metadata[CANCEL_METADATA_NAME] = e(CANCEL_PATH)
    if p.settings.mtls_base_url.rstrip("/") not in ("", p.issuer):
        # RFC 8705 §5: where clients reach the endpoints with their certificate.
        base = p.settings.mtls_base_url.rstrip("/")
        metadata["mtls_endpoint_aliases"] = {
            name: base + path for name, path in MTLS_ALIASES.items()}
    if p.settings.automated_approval_token:
        metadata["ciba_testing_approval_endpoint"] = e("/testing/ciba-approval")
    return jsonify(metadata)


@bp.get("/jwks")
def jwks():
    response = jsonify(current_provider().keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    p = current_provider()
    token = _bearer_token()
    found = p.tokens.verify_access_token(token) if token else None
    if found is not None and not confirms(found[0], client_certificate(request.environ)):
        # RFC 8705 §3: a bound token without its certificate is an invalid token.
        found = None
    if found is None:
        # RFC 6750 §3.1: invalid_token with 401 and a WWW-Authenticate challenge.
        error = 'error="invalid_token"' if token else ""
        response = jsonify(error="invalid_token",
                           error_description="The access token is missing, invalid or expired")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer" + (" " + error if error else "")
        return response
    claims, record = found
    scopes = str(claims.get("scope", "")).split()
    if "openid" not in scopes:
        response = jsonify(error="insufficient_scope", error_description="openid scope needed")
        response.status_code = 403
        response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope", scope="openid"'
        return response
    with p.db.session() as s:
        user = users.get(s, record.user_id)
    if user is None or user.disabled:
        response = jsonify(error="invalid_token", error_description="The user no longer exists")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    body = {"sub": user.id}
    if "profile" in scopes:
        body.update(name=user.name, preferred_username=user.username)
    if "email" in scopes and user.email:
        body.update(email=user.email, email_verified=False)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("access_token")  # RFC 6750 §2.2
    return None
