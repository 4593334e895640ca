"""The WebSocket opening handshake (RFC 6455 §4.2) for ``/device/ws``, and ``Upgrade``: the
WSGI middleware that, once Flask has answered and popped its request context, writes the 101
and runs the socket (ws_transport.py). The view only authenticates and prepares; nothing of
Flask is held while a device is connected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
from typing import Any, Callable, Iterable

#: RFC 6455 §1.3: the GUID hashed with the client's key into Sec-WebSocket-Accept.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The environ key under which a view leaves an accepted socket for ``Upgrade`` to run.
ENVIRON_KEY = "ciba.websocket"


class HandshakeError(ValueError):
    """The upgrade request is not a valid WebSocket opening handshake (RFC 6455 §4.2.1)."""

    def __init__(self, message: str, version_mismatch: bool = False) -> None:
        super().__init__(message)
        self.version_mismatch = version_mismatch


def server_socket(environ: dict) -> socket.socket | None:
    """The client connection the WSGI server hands over: gunicorn and werkzeug's ``serve``."""
    return environ.get("gunicorn.socket") or environ.get("werkzeug.socket")


def accept_key(environ: dict) -> str:
    """Sec-WebSocket-Accept for this request, or HandshakeError (RFC 6455 §4.2.1, §4.2.2)."""
    if "upgrade" not in {t.strip().lower() for t in environ.get("HTTP_CONNECTION", "").split(",")}:
        raise HandshakeError("Connection must include Upgrade")
    if environ.get("HTTP_UPGRADE", "").strip().lower() != "websocket":
        raise HandshakeError("Upgrade must be websocket")
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip() != "13":
        # §4.2.2: a version we do not speak is answered 426 with the versions we do.
        raise HandshakeError("Sec-WebSocket-Version must be 13", version_mismatch=True)
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:  # §4.2.1 item 5: 16 random bytes
            raise ValueError
    except (binascii.Error, ValueError):
        raise HandshakeError("Sec-WebSocket-Key must be 16 bytes in base64") from None
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def upgrade_headers(environ: dict) -> list[tuple[str, str]]:
    """The headers of the 101 answer (no extensions, no subprotocol: the protocol needs none)."""
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(environ))]


class Upgrade:
    """WSGI middleware (around ``app.wsgi_app``): when a view accepted a WebSocket (left a
    session under ``ENVIRON_KEY``), write the 101 on the socket and run the session here,
    outside Flask's request context. Any other request passes straight through.

    The 101 is written on the raw socket rather than through ``start_response`` because
    werkzeug's ``serve`` adds ``Connection: close`` to every answer. When the socket has ended,
    gunicorn is told with StopIteration (what its workers expect of a connection taken over);
    werkzeug gets a ``start_response`` to log, whose write finds the socket shut down (a client
    that went away, to werkzeug)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if "HTTP_UPGRADE" not in environ:
            return self.app(environ, start_response)
        answer: list = []

        def start(status: str, headers: list, exc_info: Any = None) -> Callable:
            answer[:] = [status, headers, exc_info]
            return _no_write

        body = self.app(environ, start)
        session = environ.pop(ENVIRON_KEY, None)
        if session is None:
            start_response(*answer)
            return body
        if not answer or not answer[0].startswith("101"):  # the app failed after the view
            session.abandon()
            start_response(*answer)
            return body
        if hasattr(body, "close"):
            body.close()
        if "gunicorn.socket" in environ:
            # Nothing reads the request any more (gunicorn calls no post_request hook here):
            # drop its environ (headers, the device JWS, the input stream) for the socket's life.
            environ.clear()
            session.start()
            raise StopIteration  # gunicorn's way to end a connection without another answer
        session.start()
        start_response("101 Switching Protocols", [])  # werkzeug logs it; its write finds EPIPE
        return []


def _no_write(data: bytes) -> None:
    raise RuntimeError("the WebSocket view must not write a body")


def switching_protocols(headers: list[tuple[str, str]]) -> bytes:
    """The 101 answer (RFC 6455 §4.2.2 item 5)."""
    return ("HTTP/1.1 101 Switching Protocols\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")
