"""Reading request bodies: OAuth form posts strictly (RFC 6749 §3.2: form-encoded; parameters
MUST NOT repeat), and JSON bodies through server/jsonsafe.py (bounded depth, finite numbers)."""

from __future__ import annotations

from typing import Any

from flask import Request

from .. import jsonsafe
from ..oauth import errors


def strict_form(request: Request) -> dict[str, str]:
    """The form as a plain dict, or invalid_request for a non-form body or a repeated field."""
    mimetype = request.mimetype or ""
    if request.method != "POST" or mimetype != "application/x-www-form-urlencoded":
        raise errors.InvalidRequestError(
            "The request must be a POST with an application/x-www-form-urlencoded body")
    form = request.form
    for key in form.keys():
        if len(form.getlist(key)) > 1:
            raise errors.InvalidRequestError(
                errors.safe_description(f"Parameter {key} is repeated"))
    if request.args:
        raise errors.InvalidRequestError("Parameters must be sent in the body, not the URL")
    return form.to_dict()


def json_or_none(request: Request, max_depth: int) -> Any:
    """The JSON body (an ``application/json`` request), or None when there is none or it is not
    JSON we accept (too deep, NaN, not UTF-8): the caller answers that in its protocol's terms."""
    if request.mimetype != "application/json":
        return None
    try:
        return jsonsafe.loads(request.get_data(cache=False) or b"null", max_depth)
    except jsonsafe.JSONInputError:
        return None
