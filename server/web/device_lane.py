"""The device lane: ``GET /device/ws`` upgrades answered in front of Flask, at the WSGI level,
by the same authentication (``DeviceService.authenticate``) and the same session
(``web.device.DeviceSession``) the Flask view uses.

Why: a reconnect storm (every device after a provider restart) is made of these requests, and
Flask's request machinery (request and app contexts, URL matching, a cookie session opened for
nothing, the hooks) cost about a quarter of a connect (docs/performance.md, devices round 3).

What Flask adds on this route happens here too (tests/server/devices/test_device_lane.py
compares the two lanes over real HTTP and WebSocket, request by request):

- WSGI middleware (ProxyFix, the client certificate) wraps this lane as it wraps Flask, and
  ``ws_handshake.Upgrade`` outside them writes the 101 and runs the socket for both;
- before_request: ``audit.bind_address``, the directory version scope, the 501 where the server
  holds no WebSockets (left to Flask), authentication (401) and the per-device cap (429);
- the device blueprint's error handler: JSON body, ``Cache-Control: no-store``, Retry-After on
  429, ``WWW-Authenticate`` on 401; after_request: the security headers and the request counter
  (Flask's endpoint name ``device.websocket``, no latency: a socket's life is none);
- teardown: the directory version scope ends before the socket runs.

Anything the lane would not answer exactly as Flask does goes to Flask: another method or
path, a query string other than one ``device_auth``, a Cookie header (a permanent session
cookie may be refreshed), an opening handshake that is not valid (Flask answers 401 before
426/400), a server that hands over no socket. ``CIBA_DEVICE_LANE=false`` turns the lane off.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Callable, Iterable
from urllib.parse import parse_qsl

from .. import audit, metrics
from ..devices.errors import DeviceError, TooManyRequests
from ..storage import versions
from . import ws_handshake, ws_transport
from .device import MAX_MESSAGE_SIZE, DeviceSession
from .fast_lane import SECURITY_HEADERS, UNEXPECTED, status_line

if TYPE_CHECKING:
    from flask import Flask

    from ..provider import Provider

log = logging.getLogger("server.web.errors")  # the logger of the 500s Flask's lane logs

PATH = "/device/ws"
ENDPOINT = "device.websocket"  # Flask's endpoint name: the metrics label


class DeviceLane:
    """WSGI app in front of Flask's own ``wsgi_app`` (inside the middleware)."""

    def __init__(self, flask_app: "Flask", provider: "Provider") -> None:
        self.next = flask_app.wsgi_app
        self.provider = provider

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET" \
                or "HTTP_COOKIE" in environ or not environ.get("SCRIPT_NAME", "").isascii() \
                or ws_handshake.server_socket(environ) is None:
            return self.next(environ, start_response)
        try:
            headers = ws_handshake.upgrade_headers(environ)
        except ws_handshake.HandshakeError:
            return self.next(environ, start_response)
        token = _token(environ)
        if token is False:
            return self.next(environ, start_response)
        return self._serve(environ, start_response, token, headers)

    def _serve(self, environ: dict, start_response: Callable, token: str | None,
               headers: list[tuple[str, str]]) -> Iterable[bytes]:
        p = self.provider
        audit.bind_address(environ.get("REMOTE_ADDR"))
        scope = versions.begin_request()
        try:
            path = environ.get("SCRIPT_NAME", "").rstrip("/") + PATH
            device = p.devices.authenticate(token, "GET", path)
            cap = p.settings.max_sockets_per_device
            if cap > 0 and len(p.hub.connections(device.user_id, device.id)) >= cap:
                raise TooManyRequests(f"this device already holds {cap} WebSocket connections; "
                                      "close one first", retry_after=p.settings.ws_ping_interval)
            socket_, detach = ws_transport.accepted(  # gevent: no greenlet held per socket
                environ, p.settings.ws_ping_interval, MAX_MESSAGE_SIZE)
            session = DeviceSession(p, device, socket_, headers, detach=detach)
            session.prepare()
        except DeviceError as exc:
            return _refuse(start_response, exc.status, _error_headers(exc), exc.body())
        except Exception:
            log.exception("unexpected error on %s %s", "GET", PATH)
            return _refuse(start_response, 500, [("Content-Type", "application/json")], None)
        finally:
            versions.end_request(scope)
        environ[ws_handshake.ENVIRON_KEY] = session
        metrics.request_done(ENDPOINT, "GET", 101, None)
        start_response("101 Switching Protocols", [])  # ws_handshake.Upgrade writes the 101
        return []


def _token(environ: dict) -> str | None | bool:
    """The device JWS as the Flask view reads it (the Authorization header first, then the
    ``device_auth`` query parameter); False when the query holds anything else."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    query = environ.get("QUERY_STRING", "")
    from_query = None
    if query:
        if not query.isascii():  # werkzeug decodes raw bytes as UTF-8; parse_qsl would not
            return False
        try:
            items = parse_qsl(query, keep_blank_values=True, strict_parsing=True,
                              errors="strict")
        except (ValueError, UnicodeDecodeError):
            return False
        if len(items) != 1 or items[0][0] != "device_auth":
            return False
        from_query = items[0][1]
    if scheme.lower() == "device" and token.strip():
        return token.strip()
    return from_query or None


def _error_headers(exc: DeviceError) -> list[tuple[str, str]]:
    """The headers web/device.py's error handler sets, in its order."""
    headers = [("Content-Type", "application/json"), *exc.headers.items(),
               ("Cache-Control", "no-store")]
    if exc.status == 401:
        headers.append(("WWW-Authenticate", 'Device error="invalid_token"'))
    return headers


def _refuse(start_response: Callable, status: int, headers: list[tuple[str, str]],
            body: dict | None) -> Iterable[bytes]:
    """An answer as Flask's jsonify writes it (sorted keys, compact, a newline), with the
    security headers and the request counter."""
    raw = UNEXPECTED if body is None else \
        (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()
    headers.insert(1, ("Content-Length", str(len(raw))))
    headers.extend(SECURITY_HEADERS)
    metrics.request_done(ENDPOINT, "GET", status, None)
    start_response(status_line(status), headers)
    return [raw]
