"""The device upgrade's short way through gunicorn's gevent worker (server.gunicorn_worker).

Why: in a reconnect storm (every device after a restart, docs/performance.md "Round 6: devices")
each connection is one ``GET /device/ws`` upgrade, and gunicorn's general HTTP/1 parser with its
header policy and environ building was about a fifth of the worker's CPU per connect. Here the
first bytes of a new connection are peeked (MSG_PEEK: nothing is consumed); when they are one
whole, plain upgrade request for the device lane, the environ is built straight from them; in
every other case the connection goes, untouched, through gunicorn's own code.

"Plain" is deliberately narrow, so that the environ is the one gunicorn would build
(tests/server/test_gunicorn_device.py compares the two over a matrix of requests): exactly
``GET /device/ws[?query] HTTP/1.1`` with a query of URL-safe characters; token header names
without ``_`` (gunicorn's ``header_map``), each once; printable ASCII values; no body
(Content-Length, Transfer-Encoding), no Expect, nothing after the blank line, within gunicorn's
size limits; the configured secure-scheme headers (X-Forwarded-Proto, ...) at most one, honoured
only from ``forwarded_allow_ips`` as gunicorn does. The app (ProxyFix, the device lane, Flask)
sees the same environ either way.

A device socket the app takes over is the connection's own socket, not a duplicate of its
descriptor (``ws_transport.HANDOVER``): neither this code nor the worker's server closes a
socket found in ``ws_transport.TAKEN`` (server.gunicorn_worker). A duplicate and the second
socket object it needs were 4-5% of a storm's samples.

What the app answers is written by gunicorn's own ``Response`` on a ``Request`` that gunicorn's
parser makes from the same bytes, but only when there is an answer (a refusal, or Flask's) rather
than a socket taken over: refusals, keep-alive and access logs stay exactly gunicorn's. A kept-
alive connection then goes on in gunicorn's loop.

Off (gunicorn's way throughout) unless the app is the provider with its device lane on
(``CIBA_DEVICE_LANE``), and for TLS, unix sockets, the PROXY protocol, uwsgi, HTTP/2 cleartext,
no keep-alive, request hooks of one's own, or a gunicorn older than the one whose environ the
test compares (27).
"""

from __future__ import annotations

import errno
import io
import os
import re
import socket
import ssl
from datetime import datetime
from typing import Any, Callable

import gunicorn
from gunicorn import util
from gunicorn.config import PostRequest, PreRequest
from gunicorn.http import get_parser, wsgi

from .web import ws_transport

try:  # gunicorn's own forwarded_allow_ips check (a private name: without it, no short way)
    from gunicorn.http.message import _ip_in_allow_list
except ImportError:  # pragma: no cover - another gunicorn
    _ip_in_allow_list = None

#: The gunicorn whose environ tests/server/test_gunicorn_device.py compares (older: gunicorn's way).
TESTED_FROM = (27, 0)
#: The whole request must arrive in the first segment: a device's upgrade is about 500 bytes.
PEEK_BYTES = 8192
_START = b"GET /device/ws"
_TARGET = re.compile(rb"/device/ws(?:\?[A-Za-z0-9._~%=&+\-]*)?")
_NAME = re.compile(rb"[A-Za-z0-9-]+")
#: Fields gunicorn treats specially (a body, 100-continue, the environ's own keys).
_NOT_PLAIN = frozenset({"CONTENT-LENGTH", "TRANSFER-ENCODING", "EXPECT", "CONTENT-TYPE"})


class DeviceAccept:
    """One worker's short way for device upgrades (see the module)."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.cfg = cfg = worker.cfg
        self._trusted: dict[str, bool] = {}
        self._keys: dict[bytes, str | None] = {}
        # The environ key of each secure-scheme header, and the value that means https.
        self._scheme_keys = {"HTTP_" + k.upper().replace("-", "_"): v
                             for k, v in cfg.secure_scheme_headers.items()}
        # gunicorn's limits (each a lookup through Config.__getattr__), as the worker started.
        self._line_limit = cfg.limit_request_line
        self._fields_limit = cfg.limit_request_fields
        self._field_size_limit = cfg.limit_request_field_size
        self._errors = wsgi.WSGIErrorsWrapper(cfg)  # the error log's streams: one per worker
        self._base = {"wsgi.version": (1, 0), "wsgi.multithread": True,
                      "wsgi.multiprocess": cfg.workers > 1, "wsgi.run_once": False,
                      "wsgi.file_wrapper": wsgi.FileWrapper, "wsgi.input_terminated": True,
                      "SERVER_SOFTWARE": wsgi.SERVER_SOFTWARE, "REQUEST_METHOD": "GET",
                      "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/device/ws",
                      "SCRIPT_NAME": ""}

    @staticmethod
    def usable(worker: Any) -> bool:
        """Whether this worker's app and settings allow the short way at all."""
        cfg = worker.cfg
        provider = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("ciba")
        settings = getattr(provider, "settings", None)
        return (getattr(settings, "device_lane", False) and _ip_in_allow_list is not None
                and gunicorn.version_info >= TESTED_FROM  # the environ compared with its own
                and hasattr(wsgi, "_make_early_hints_callback") and not cfg.is_ssl
                and cfg.keepalive > 0 and cfg.proxy_protocol in ("off", False, None)
                and getattr(cfg, "protocol", "http") == "http"
                and getattr(cfg, "http2_cleartext", "off") in ("off", False, None)
                and cfg.pre_request is PreRequest.pre_request
                and cfg.post_request is PostRequest.post_request
                and not os.environ.get("SCRIPT_NAME"))

    # -- reading the request -------------------------------------------------------------------
    def peer_trusted(self, ip: str) -> bool:
        """gunicorn's ``forwarded_allow_ips`` check, remembered per address."""
        trusted = self._trusted.get(ip)
        if trusted is None:
            if len(self._trusted) > 4096:
                self._trusted.clear()
            cfg = self.cfg
            trusted = self._trusted[ip] = _ip_in_allow_list(
                ip, cfg.forwarded_allow_ips, cfg.forwarded_allow_networks())
        return trusted

    def environ(self, data: bytes, addr: tuple, server: tuple) -> tuple[dict, int] | None:
        """The environ gunicorn would build for the plain upgrade request at the start of
        ``data``, and its length in bytes; None for anything else (see the module)."""
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 != len(data):
            return None
        lines = data[:end].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1" \
                or not _TARGET.fullmatch(parts[1]) \
                or len(lines[0]) + 8 > self._line_limit > 0:  # a margin under the limit
            return None
        fields = lines[1:]
        if len(fields) > self._fields_limit:
            return None
        env = dict(self._base)
        scheme = None
        size_limit = self._field_size_limit
        for line in fields:
            name, sep, raw = line.partition(b":")
            key = self._key(name)
            if not sep or key is None or len(line) + 2 > size_limit > 0 or key in env:
                return None
            value = raw.decode("latin-1").strip(" \t")
            if not (value.isascii() and value.isprintable()):
                return None
            secure = self._scheme_keys.get(key)
            if secure is not None:
                if scheme is not None:  # two of them: gunicorn judges their agreement
                    return None
                scheme = "https" if value == secure else "http"
            env[key] = value
        target = parts[1].decode("ascii")
        _, _, query = target.partition("?")
        env.update({"RAW_URI": target, "QUERY_STRING": query, "REMOTE_ADDR": addr[0],
                    "REMOTE_PORT": str(addr[1]), "SERVER_NAME": server[0],
                    "SERVER_PORT": str(server[1]),
                    "wsgi.url_scheme": scheme if scheme and self.peer_trusted(addr[0])
                    else "http"})
        return env, len(data)

    def _key(self, name: bytes) -> str | None:
        """The environ key of a header field name, None when the short way must not take the
        request (not a token gunicorn maps alike, or a field gunicorn treats specially);
        remembered per name (a storm repeats the same six)."""
        key = self._keys.get(name, False)
        if key is False:
            key = None
            if _NAME.fullmatch(name):
                upper = name.decode("ascii").upper()
                if upper not in _NOT_PLAIN:
                    key = "HTTP_" + upper.replace("-", "_")
            if len(self._keys) > 256:
                self._keys.clear()
            self._keys[name] = key
        return key

    # -- serving it ----------------------------------------------------------------------------
    def serve(self, listener: socket.socket, client: socket.socket, addr: Any) -> bool:
        """Serve a new connection that starts with a plain device upgrade; False (nothing read)
        for gunicorn to serve it."""
        if isinstance(client, ssl.SSLSocket) or not isinstance(addr, tuple):
            return False
        client.settimeout(self.cfg.keepalive)  # gunicorn's wait for a request
        try:
            data = client.recv(PEEK_BYTES, socket.MSG_PEEK)
        except socket.timeout:  # nothing within keepalive: gunicorn closes such a connection
            util.close(client)
            return True
        except OSError:  # reset: gunicorn meets it again and says so as it does
            return False
        finally:
            client.settimeout(None)
        if not data.startswith(_START):
            return False
        server = listener.getsockname()
        if not isinstance(server, tuple):
            return False
        built = self.environ(data, addr, server)
        if built is None:
            return False
        environ, size = built
        raw = b""
        try:
            while len(raw) < size:  # consume what was peeked (already in the socket's buffer)
                chunk = client.recv(size - len(raw))
                if not chunk:
                    raise ConnectionResetError
                raw += chunk
        except OSError:  # gone meanwhile: nothing to answer
            util.close(client)
            return True
        self._answer(listener, client, addr, environ, raw)
        return True

    def _answer(self, listener: socket.socket, client: socket.socket, addr: tuple,
                environ: dict, raw: bytes) -> None:
        """``AsyncWorker.handle_request`` for this request; gunicorn's loop afterwards when the
        connection stays open."""
        worker, cfg = self.worker, self.cfg
        environ.update({"wsgi.errors": self._errors, "wsgi.input": io.BytesIO(),
                        "gunicorn.socket": client, ws_transport.HANDOVER: True})
        made: list = []  # [Request, Response] once there is an answer to write

        def answer() -> tuple[Any, Any]:
            if not made:
                req = next(get_parser(cfg, [raw], addr))
                resp = wsgi.Response(req, client, cfg)
                if not worker.alive or not cfg.keepalive:
                    resp.force_close()
                made[:] = [req, resp]
            return made[0], made[1]

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            return answer()[1].start_response(status, headers, exc_info)

        def early_hints(headers: list) -> None:
            req, resp = answer()
            wsgi._make_early_hints_callback(req, client, resp)(headers)

        environ["wsgi.early_hints"] = early_hints
        request_start = datetime.now()
        worker.log.debug("%s %s", "GET", environ["PATH_INFO"])  # gunicorn's pre_request
        worker.nr += 1
        if worker.nr >= worker.max_requests and worker.alive:
            worker.log.info("Autorestarting worker after current request.")
            worker.alive = False
        try:
            try:
                respiter = worker.wsgi(environ, start_response)
                if worker.is_already_handled(respiter):
                    return self._go_on(listener, client, addr)
                req, resp = answer()
                try:
                    if isinstance(respiter, wsgi.FileWrapper):
                        resp.write_file(respiter)
                    else:
                        for item in respiter:
                            resp.write(item)
                    resp.close()
                finally:
                    worker.log.access(resp, req, environ, datetime.now() - request_start)
                    if hasattr(respiter, "close"):
                        respiter.close()
            except StopIteration as exc:  # the socket was taken over (or the app ended it)
                worker.log.debug("Closing connection. %s", exc)
            except OSError:
                raise
            except Exception as exc:
                if made and made[1].headers_sent:
                    worker.log.exception("Error handling request")
                    try:
                        client.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                else:
                    worker.handle_error(answer()[0], client, addr, exc)
            else:
                if not made[1].should_close():
                    return self._go_on(listener, client, addr)
        except OSError as exc:  # as gunicorn's handle: a peer that went away is no error
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                worker.log.exception("Socket error processing request.")
        if client not in ws_transport.TAKEN:  # else a detached device socket: open, not ours
            util.close(client)

    def _go_on(self, listener: socket.socket, client: socket.socket, addr: tuple) -> None:
        """The connection stays open: gunicorn serves its next requests."""
        from gunicorn.workers.base_async import AsyncWorker

        AsyncWorker.handle(self.worker, listener, client, addr)
