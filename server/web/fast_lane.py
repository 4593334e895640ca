"""The fast lane: POST /token and POST /bc-authorize answered in front of Flask, at the WSGI
level, by the same Authlib-shaped endpoint and grant (server/oauth/) on a lean request.

Why: on these two hot paths Flask's request and app contexts, werkzeug's Request and MultiDict
and Authlib's Flask request wrapper (which builds the URL) cost more than the protocol itself
(docs/performance.md, round 3). The protocol is not copied: the lane hands a ``LeanRequest`` to
``AuthorizationServer.token_response_parts`` / ``endpoint_response_parts``, exactly what the
Flask views reach through Authlib, and renders the (status, body, headers) they return by the
same rules as ``AuthorizationServer.handle_response``.

What Flask adds on these routes happens here too (tests/server/test_fast_lane.py compares the
two lanes' answers over HTTP, request by request):

- WSGI middleware (ProxyFix, the client certificate, web/client_cert.py) wraps this lane as it
  wraps Flask, so both see the same environ;
- before_request: ``audit.bind_address``, the directory version scope, the metrics timer;
- the view's ``strict_form``: a form body only, no repeated parameter, nothing in the URL;
- after_request: the security headers and the request counter (Flask's endpoint names);
- teardown: the directory version scope ends;
- an exception that is not an OAuth error: logged and answered 500 as web/errors.py does.

Anything the lane would not answer exactly as Flask does goes to Flask, with the body it read
put back: another method or path, a query string, another content type, a missing or too large
Content-Length, a body that is not UTF-8 or has too many fields, a repeated parameter, a Cookie
header (Flask may refresh a permanent session cookie), plain http that Authlib refuses, a token
request for a grant other than CIBA. ``CIBA_FAST_LANE=false``
turns the lane off.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import parse_qsl

from authlib.common.security import is_secure_transport
from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from werkzeug import urls as _registers_url_quote_errors  # noqa: F401 (parse_qsl's errors=)
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_current_url

from .. import audit, metrics
from ..oauth.ciba_core import CIBA_GRANT_TYPE
from ..oauth.mtls import ENVIRON_KEY
from ..oauth.server import response_body
from ..storage import versions

if TYPE_CHECKING:
    from flask import Flask

    from ..provider import Provider

log = logging.getLogger("server.web.errors")  # the logger of the 500s Flask's lane logs

FORM = "application/x-www-form-urlencoded"
#: Path -> Flask's endpoint name (the metrics label).
ROUTES = {"/token": "ciba.token", "/bc-authorize": "ciba.backchannel_authentication"}
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                    ("Referrer-Policy", "no-referrer"))
_STATUS: dict[int, str] = {}  # status code -> WSGI status line


class Form(dict):
    """The parsed form: a plain dict with the one MultiDict method the endpoint calls."""

    def to_dict(self) -> dict[str, str]:
        return dict(self)


class LeanRequest(OAuth2Request):
    """Authlib's OAuth2Request over the WSGI environ and a parsed form: headers read from the
    environ, the URL built only if something asks for it."""

    def __init__(self, environ: dict, form: Form) -> None:
        # OAuth2Request.__init__ would build and check the URL; the lane checked the transport.
        self.method = "POST"
        self.headers = EnvironHeaders(environ)
        self._environ, self._form, self._body = environ, form, None
        self.payload = BasicOAuth2Payload(form)
        self.client = self.auth_method = self.user = None
        self.authorization_code = self.refresh_token = self.credential = None
        self._scope = None
        # RFC 8705: as AuthorizationServer.create_oauth2_request sets it on the Flask lane.
        self.client_certificate = environ.get(ENVIRON_KEY)

    @property
    def uri(self) -> str:  # type: ignore[override]
        return get_current_url(self._environ)

    @property
    def args(self) -> dict:
        return {}

    @property
    def form(self) -> Form:
        return self._form


class FastLane:
    """WSGI app in front of Flask's own ``wsgi_app`` (inside the middleware)."""

    def __init__(self, flask_app: "Flask", provider: "Provider") -> None:
        self.next = flask_app.wsgi_app
        self.provider = provider
        self.max_body = flask_app.config["MAX_CONTENT_LENGTH"]
        self.max_parts = flask_app.config.get("MAX_FORM_PARTS") or 1000

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        endpoint = ROUTES.get(environ.get("PATH_INFO", ""))
        if endpoint is None or environ.get("REQUEST_METHOD") != "POST" \
                or environ.get("QUERY_STRING") or "HTTP_COOKIE" in environ \
                or environ.get("CONTENT_TYPE", "").lower() != FORM \
                or not _secure(environ):
            return self.next(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit() or int(length) > self.max_body:
            return self.next(environ, start_response)
        try:
            body = environ["wsgi.input"].read(int(length)) if length != "0" else b""
        except Exception as exc:  # a timeout or a disconnect: Flask answers it as always
            environ["wsgi.input"] = FailingInput(exc)
            return self.next(environ, start_response)
        form = self._parse(body)
        if form is None or len(body) != int(length) or (
                endpoint == "ciba.token" and form.get("grant_type") != CIBA_GRANT_TYPE):
            environ["wsgi.input"] = io.BytesIO(body)
            return self.next(environ, start_response)
        return self._serve(environ, start_response, endpoint, form)

    def _parse(self, body: bytes) -> Form | None:
        """The form as werkzeug parses it, or None where the lanes could differ."""
        try:
            text = body.decode()
            if "%" in text or "+" in text:
                items = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
            else:  # nothing to unquote: parse_qsl's split alone (tests/server/test_fast_lane.py)
                items = [(name, value) for name, _, value in
                         (part.partition("=") for part in text.split("&") if part)]
        except ValueError:
            return None
        form = Form(items)
        if len(form) != len(items) or len(items) > self.max_parts:
            return None  # a repeated parameter: strict_form's error, from Flask
        return form

    def _serve(self, environ, start_response, endpoint: str, form: Form) -> Iterable[bytes]:
        started = time.perf_counter()
        audit.bind_address(environ.get("REMOTE_ADDR"))
        scope = versions.begin_request()
        try:
            server = self.provider.authorization
            request = LeanRequest(environ, form)
            try:
                if endpoint == "ciba.token":
                    status, payload, headers = server.token_response_parts(request)
                else:
                    status, payload, headers = server.endpoint_response_parts(
                        "backchannel_authentication", request)
                body = response_body(payload).encode()
                headers = _protocol_headers(headers, len(body))
            except Exception:
                log.exception("unexpected error on %s %s", "POST", environ.get("PATH_INFO"))
                status, body = 500, UNEXPECTED
                headers = [("Content-Type", "application/json"),
                           ("Content-Length", str(len(body)))]
        finally:
            versions.end_request(scope)
        headers.extend(SECURITY_HEADERS)
        metrics.request_done(endpoint, "POST", status, time.perf_counter() - started)
        start_response(status_line(status), headers)
        return [body]


def _protocol_headers(headers: list, length: int) -> list[tuple[str, str]]:
    """The headers werkzeug's Response gives handle_response's: the endpoint's, then
    Content-Length, with Cache-Control and Pragma set (replacing in place)."""
    out, seen = [], set()
    for name, value in headers:
        key = name.lower()
        if key in ("cache-control", "pragma", "content-length"):
            if key in seen:
                continue
            seen.add(key)
            value = _FIXED[key](length)
        out.append((name, value))
    if "content-length" not in seen:
        out.append(("Content-Length", str(length)))
    for key, name in (("cache-control", "Cache-Control"), ("pragma", "Pragma")):
        if key not in seen:
            out.append((name, _FIXED[key](length)))
    return out


_FIXED: dict[str, Callable[[int], str]] = {
    "cache-control": lambda n: "no-store", "pragma": lambda n: "no-cache",
    "content-length": lambda n: str(n)}

#: web/errors.py's 500 as Flask's jsonify writes it (sorted keys, compact, a newline).
UNEXPECTED = (json.dumps({"error": "server_error",
                           "error_description": "The provider hit an unexpected condition"},
                          sort_keys=True, separators=(",", ":")) + "\n").encode()


def status_line(status: int) -> str:
    """As werkzeug's Response writes it: ``400 BAD REQUEST``."""
    line = _STATUS.get(status)
    if line is None:
        line = _STATUS[status] = f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}"
    return line


def _secure(environ: dict) -> bool:
    """Authlib's transport check (OAuth2Request refuses plain http but on loopback). It reads
    the scheme and the host name only (and AUTHLIB_INSECURE_TRANSPORT, which it sees afresh), so
    its answer is remembered per scheme and Host instead of building each request's URL."""
    key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
           environ.get("SERVER_PORT"), os.environ.get("AUTHLIB_INSECURE_TRANSPORT"))
    found = _TRANSPORT.get(key)
    if found is None:
        if len(_TRANSPORT) > 256:  # Host is the client's to choose: bounded
            _TRANSPORT.clear()
        found = _TRANSPORT[key] = is_secure_transport(get_current_url(environ))
    return found


_TRANSPORT: dict[tuple, bool] = {}


class FailingInput(io.RawIOBase):
    """A body stream that fails as the real one did, for Flask to answer."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        raise self.exc

    def readinto(self, b: Any) -> int:
        raise self.exc
