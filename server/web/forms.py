"""Reading OAuth form posts strictly (RFC 6749 §3.2: form-encoded; parameters MUST NOT repeat)."""

from __future__ import annotations

from flask import Request

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
