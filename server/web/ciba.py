"""HTTP glue for the OAuth endpoints: backchannel authentication (CIBA §7), token (CIBA §10),
introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..oauth.clients import AUTH_METHODS, RegisteredClient
from .context import current_provider
from .forms import strict_form

bp = Blueprint("ciba", __name__)


def authenticated_client(endpoint: str) -> RegisteredClient:
    """The calling client, authenticated exactly as at the token endpoint (CIBA §7.1): Authlib's
    methods with ours (RFC 7523 assertions, RFC 8705 mTLS, the Basic header check in
    oauth/server.py); invalid_client is 401."""
    p = current_provider()
    oauth_request = p.authorization.create_oauth2_request(request)
    return p.authorization.authenticate_client(oauth_request, list(AUTH_METHODS), endpoint)


@bp.post("/bc-authorize")
def backchannel_authentication():
    p = current_provider()
    form = strict_form(request)
    client = authenticated_client("backchannel_authentication")
    body = p.backchannel.handle(client, form)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"  # CIBA §7.3
    return response


@bp.post("/token")
def token():
    strict_form(request)
    return current_provider().authorization.create_token_response(request)


@bp.post("/introspect")
def introspect():
    strict_form(request)
    return current_provider().authorization.create_endpoint_response("introspection", request)


@bp.post("/revoke")
def revoke():
    strict_form(request)
    return current_provider().authorization.create_endpoint_response("revocation", request)
