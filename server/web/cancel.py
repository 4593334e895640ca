"""HTTP glue of the client-initiated cancel (server/oauth/cancel.py): ``POST /bc-cancel``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..oauth.cancel import CANCEL_PATH, cancel_request
from ..oauth.clients import AUTH_METHODS
from .context import current_provider
from .forms import strict_form

bp = Blueprint("cancel", __name__)


@bp.post(CANCEL_PATH)
def bc_cancel():
    p = current_provider()
    form = strict_form(request)
    oauth_request = p.authorization.create_oauth2_request(request)
    # The client authenticates as at the token endpoint (CIBA §7.1, RFC 6749 §2.3).
    client = p.authorization.authenticate_client(oauth_request, list(AUTH_METHODS), "bc_cancel")
    response = jsonify(cancel_request(p, client, form))
    response.headers["Cache-Control"] = "no-store"
    return response
