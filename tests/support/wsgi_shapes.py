"""A WSGI app answering in every shape gunicorn frames differently, for the worker-class tests
(tests/server/test_gunicorn_worker.py): one known-length chunk, several chunks, a chunked
stream, empty and bodiless answers, a body longer than its Content-Length, a file (sendfile),
an app error, and a WebSocket-style upgrade answered 101."""

from __future__ import annotations

import os
import tempfile

FILE = os.path.join(tempfile.gettempdir(), f"wsgi-shapes-{os.getpid()}.txt")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/one":
        body = b'{"auth_req_id":"abc","expires_in":120,"interval":5}'
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/bad":
        body = b'{"error":"invalid_request"}'
        start_response("400 BAD REQUEST", [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(body))),
                                           ("Cache-Control", "no-store")])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Length", "15")])
        return iter([b"first", b"", b"secon", b"third"])
    if path == "/chunked":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (part for part in [b"one ", b"two ", b"", b"three"])
    if path == "/empty":
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    if path == "/nocontent":
        start_response("204 No Content", [])
        return [b"dropped"]
    if path == "/over":
        start_response("200 OK", [("Content-Length", "3")])
        return [b"0123456789"]
    if path == "/file":
        with open(FILE, "wb") as f:
            f.write(b"file body " * 100)
        start_response("200 OK", [("Content-Length", "1000")])
        return environ["wsgi.file_wrapper"](open(FILE, "rb"))
    if path == "/upgrade":
        start_response("101 Switching Protocols", [("Upgrade", "websocket"),
                                                  ("Connection", "Upgrade")])
        return [b""]
    if path == "/write":  # the legacy write() callable, then one more chunk
        write = start_response("200 OK", [("Content-Length", "10")])
        write(b"hello")
        return [b"world"]
    raise RuntimeError("an app error")
