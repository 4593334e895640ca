"""Automated approval for the OpenID conformance suite: exists only when
CIBA_AUTOMATED_APPROVAL_TOKEN is set (never by default; a warning is logged at start).

Two ways in, one answer: the Flask view, and ``ApprovalLane`` in front of Flask (with the fast
lane on) for the well-formed request, the side-by-side benchmark's approval of every flow. The
lane answers only an authorized POST with a plain form naming a stored request; everything else
(a wrong or missing bearer token, a bad form, an unknown auth_req_id, a query string, a cookie)
goes on to the view with the body put back, so every error is the view's own.
"""

from __future__ import annotations

import io
import json
import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable

from flask import Blueprint, jsonify, request

from .. import audit, metrics
from ..oauth import errors, request_ids
from ..oauth.decisions import Outcome, decide
from ..security import equal
from ..storage import ciba_requests, versions
from .context import current_provider
from .fast_lane import FORM, SECURITY_HEADERS, UNEXPECTED, FailingInput, FastLane, status_line
from .forms import strict_form

if TYPE_CHECKING:
    from ..ports import ProviderCore

bp = Blueprint("testing", __name__)
log = logging.getLogger("server.web.errors")  # the logger of the 500s Flask's lane logs
PATH = "/testing/ciba-approval"
ENDPOINT = "testing.ciba_approval"  # Flask's endpoint name: the metrics label


@bp.post(PATH)
def ciba_approval():
    p = current_provider()
    if not authorized(request.headers.get("Authorization", ""), p.settings.automated_approval_token):
        response = jsonify(error="invalid_token", error_description="Bearer token required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    form = strict_form(request)
    action = form.get("action")
    if not form.get("auth_req_id") or action not in ("allow", "deny"):
        raise errors.InvalidRequestError("auth_req_id and action=allow|deny are required")
    req = ciba_requests.find_by_hash(p.db, request_ids.key(form["auth_req_id"]))
    if req is None:
        raise errors.InvalidRequestError("Unknown auth_req_id")
    outcome = decide(p, req.id, action == "allow", "testing", req.delivery_mode)
    response = jsonify(status=outcome.value)
    response.status_code = status_of(outcome)
    return response


def authorized(header: str, token: str) -> bool:
    """``Authorization: Bearer <token>``, the token compared in constant time."""
    scheme, _, sent = header.partition(" ")
    return scheme.lower() == "bearer" and equal(sent.strip(), token)


def status_of(outcome: Outcome) -> int:
    return {Outcome.APPROVED: 200, Outcome.DENIED: 200, Outcome.EXPIRED: 410}.get(outcome, 409)


def _body(outcome: Outcome) -> bytes:
    """The view's body as Flask's jsonify writes it (sorted keys, compact, a newline)."""
    return (json.dumps({"status": outcome.value}, separators=(",", ":")) + "\n").encode()


_BODIES = {outcome: _body(outcome) for outcome in Outcome}


class ApprovalLane(FastLane):
    """POST /testing/ciba-approval before Flask (inside the middleware, like the fast lane):
    what the view and Flask's hooks do for a well-formed request (the address for the audit
    record, the directory version scope, the security headers, the request counter), without
    Flask's request context, werkzeug's Request and Response (about half the view's CPU)."""

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        p: "ProviderCore" = self.provider
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST" \
                or environ.get("QUERY_STRING") or "HTTP_COOKIE" in environ \
                or environ.get("CONTENT_TYPE", "").lower() != FORM \
                or not authorized(environ.get("HTTP_AUTHORIZATION", ""),
                                  p.settings.automated_approval_token):
            return self.next(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit() or not 0 < int(length) <= self.max_body:
            return self.next(environ, start_response)
        try:
            body = environ["wsgi.input"].read(int(length))
        except Exception as exc:  # a timeout or a disconnect: Flask answers it as always
            environ["wsgi.input"] = FailingInput(exc)
            return self.next(environ, start_response)
        form = self._parse(body)
        environ["wsgi.input"] = io.BytesIO(body)  # for Flask, if the lane passes
        if form is None or len(body) != int(length) or not form.get("auth_req_id") \
                or form.get("action") not in ("allow", "deny"):
            return self.next(environ, start_response)
        started = time.perf_counter()
        audit.bind_address(environ.get("REMOTE_ADDR"))
        scope = versions.begin_request()
        try:
            decided = self._decide(form)
        finally:
            versions.end_request(scope)
        if decided is None:
            return self.next(environ, start_response)  # unknown: the view's invalid_request
        status, answer = decided
        start_response(status_line(status), [
            ("Content-Type", "application/json"), ("Content-Length", str(len(answer))),
            *SECURITY_HEADERS])
        metrics.request_done(ENDPOINT, "POST", status, time.perf_counter() - started)
        return [answer]

    def _decide(self, form: dict) -> tuple[int, bytes] | None:
        """(status, body) of the decision, or None for an auth_req_id nobody issued."""
        p: "ProviderCore" = self.provider
        try:
            req = ciba_requests.find_by_hash(p.db, request_ids.key(form["auth_req_id"]))
            if req is None:
                return None
            outcome = decide(p, req.id, form["action"] == "allow", "testing", req.delivery_mode)
            return status_of(outcome), _BODIES[outcome]
        except Exception:
            log.exception("unexpected error on %s %s", "POST", PATH)
            return 500, UNEXPECTED
