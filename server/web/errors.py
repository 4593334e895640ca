"""Turning protocol errors into responses in one place, and never answering with a 500 page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from ..oauth.errors import OAuth2Error

log = logging.getLogger(__name__)


def oauth_error_response(error: OAuth2Error):
    status, body, headers = error()
    response = jsonify(dict(body))
    response.status_code = status
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def register(app: Flask) -> None:
    app.register_error_handler(OAuth2Error, oauth_error_response)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if _wants_json():
            response = jsonify(error=_code(exc.code or 500), error_description=exc.description)
            response.status_code = exc.code or 500
            return response
        return exc

    @app.errorhandler(TimeoutError)
    def read_timeout(exc: TimeoutError):
        # The client stopped sending its body (``serve``'s read timeout): 408, nothing to log.
        response = jsonify(error="invalid_request", error_description="The request timed out")
        response.status_code = 408
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        response = jsonify(error="server_error",
                           error_description="The provider hit an unexpected condition")
        response.status_code = 500
        return response


def _wants_json() -> bool:
    return not request.accept_mimetypes.accept_html or request.path.startswith(
        ("/token", "/bc-authorize", "/bc-cancel", "/introspect", "/revoke", "/userinfo",
         "/device", "/testing", "/register"))


def _code(status: int) -> str:
    return {400: "invalid_request", 401: "invalid_token", 404: "not_found",
            405: "invalid_request", 413: "invalid_request", 429: "too_many_requests"}.get(
        status, "server_error")
