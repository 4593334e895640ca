"""A WSGI app for tests/server/test_gunicorn_device.py: it looks like the provider with its
device lane on (``extensions["ciba"].settings.device_lane``), so the production worker class
takes its short way for ``GET /device/ws`` upgrades, and it answers with the environ it was
given (the values a server chooses; object-valued keys by type only) and whether that environ
came the short way. ``Authorization: take-over`` makes it take the socket over as the device
lane does (a 101 written on the socket, the connection ended with StopIteration); anything else
is answered 401 with a JSON body, as a refused upgrade is. ``/gc``: the collector's thresholds."""

from __future__ import annotations

import gc
import io
import json
from types import SimpleNamespace

#: Keys whose values are objects of the server's (compared by presence, not value).
OBJECTS = {"wsgi.errors", "wsgi.input", "gunicorn.socket", "wsgi.early_hints",
           "wsgi.file_wrapper"}


def _app(environ, start_response):
    if environ["PATH_INFO"] == "/gc":  # the worker's garbage collector thresholds
        body = json.dumps(gc.get_threshold()).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    # ciba.socket_handover: the short way offers its own socket to a device that takes it
    # over (server/web/ws_transport.py's HANDOVER); gunicorn's way offers none.
    seen = {k: (sorted(v) if k == "wsgi.version" else v) for k, v in environ.items()
            if k not in OBJECTS and k not in ("REMOTE_PORT", "ciba.socket_handover")}
    seen["objects"] = sorted(k for k in OBJECTS if k in environ)
    short = isinstance(environ.get("wsgi.input"), io.BytesIO)
    if environ.get("HTTP_AUTHORIZATION") == "take-over":
        sock = environ["gunicorn.socket"]
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nX-Short-Way: " + (b"yes" if short else b"no")
                     + b"\r\n\r\n" + json.dumps(seen, sort_keys=True).encode())
        raise StopIteration
    body = (json.dumps(seen, sort_keys=True) + "\n").encode()
    start_response("401 UNAUTHORIZED", [("Content-Type", "application/json"),
                                        ("Content-Length", str(len(body))),
                                        ("X-Short-Way", "yes" if short else "no")])
    return [body]


class App:
    """The app, with the attribute the worker reads to know the device lane is on."""

    extensions = {"ciba": SimpleNamespace(settings=SimpleNamespace(device_lane=True))}

    def __call__(self, environ, start_response):
        return _app(environ, start_response)


app = App()
