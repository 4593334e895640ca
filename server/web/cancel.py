"""HTTP glue of the client-initiated cancel (server/oauth/cancel.py): ``POST /bc-cancel``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..oauth.cancel import CANCEL_PATH, cancel_request
from .ciba import authenticated_client
from .context import current_provider
from .forms import strict_form

bp = Blueprint("cancel", __name__)


@bp.post(CANCEL_PATH)
def bc_cancel():
    form = strict_form(request)
    # The client authenticates as at the token endpoint (CIBA §7.1, RFC 6749 §2.3).
    client = authenticated_client("bc_cancel")
    response = jsonify(cancel_request(current_provider(), client, form))
    response.headers["Cache-Control"] = "no-store"
    return response
