"""A lean server-side WebSocket (RFC 6455) on the socket the WSGI server hands over, for the
device sockets at ``/device/ws`` (docs/device-protocol.md §5).

Why not simple-websocket (flask-sock): it spends a second greenlet (a thread under ``serve``) per
socket reading in the background, re-parses the handshake through h11, offers
permessage-deflate, and keeps the Flask request (and its deep stack) alive for the socket's whole
life. With 10,000 devices that was 53 KiB and 3.3 ms of CPU per socket (docs/performance.md).
Here one greenlet (or ``serve``'s one thread) per socket does everything: the 101 answer goes out
through the WSGI server's own ``start_response`` (gunicorn and werkzeug both write a ``101``
without a body), then ``WebSocket.run`` reads frames with wsproto's frame layer, answers pings,
pings the peer every ``ping_interval`` seconds, and ends the socket when the peer closes, goes
silent (close 1008 ``Ping/Pong timeout``) or sends a message over ``max_message_size`` (1009).

``Upgrade`` (a WSGI middleware around the Flask app) runs the socket after Flask has answered
and popped its request context: the view only authenticates and prepares; nothing of Flask is
held while a device is connected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterable

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

log = logging.getLogger(__name__)

#: RFC 6455 §1.3: the GUID hashed with the client's key into Sec-WebSocket-Accept.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The environ key under which a view leaves an accepted socket for ``Upgrade`` to run.
ENVIRON_KEY = "ciba.websocket"
#: Seconds a socket we closed waits for the peer's close frame (RFC 6455 §7.1.1) before the
#: TCP connection is dropped anyway.
CLOSE_TIMEOUT = 5.0
RECEIVE_BYTES = 4096


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


class WebSocket:
    """One accepted server-side WebSocket. ``send`` and ``close`` may be called from any
    greenlet or thread; ``run`` reads in the greenlet or thread that serves the connection."""

    def __init__(self, sock: socket.socket, ping_interval: float, max_message_size: int) -> None:
        self.sock = sock
        self.ping_interval = ping_interval
        self.max_message_size = max_message_size
        self.close_code: int | None = None  # what the peer sent, or what we sent first
        self._proto = Connection(ConnectionType.SERVER)
        self._lock = threading.Lock()
        self._closing_since: float | None = None
        self._corked: bytearray | None = None

    def cork(self, first: bytes) -> None:
        """Hold ``first`` (the 101) and what is sent next until ``uncork``: one write, not one
        per message, for the handshake and the greeting (a quarter of a connect's CPU went
        into separate sends)."""
        with self._lock:
            self._corked = bytearray(first)

    def uncork(self) -> None:
        with self._lock:
            data, self._corked = self._corked, None
            if data:
                self.sock.sendall(data)

    def _write(self, data: bytes) -> None:
        if self._corked is not None:
            self._corked += data
        else:
            self.sock.sendall(data)

    @property
    def open(self) -> bool:
        return self._proto.state is ConnectionState.OPEN

    def send(self, text: str) -> None:
        """Send one text message; OSError (or ConnectionError) when the socket is gone."""
        with self._lock:
            if self._proto.state is not ConnectionState.OPEN:
                raise ConnectionError("the WebSocket is closed")
            self._write(self._proto.send(Message(data=text)))

    def close(self, reason: int = CloseReason.NORMAL_CLOSURE, message: str = "") -> None:
        """Start the closing handshake (RFC 6455 §5.5.1) with close code ``reason``; ``run``
        ends when the peer answers, hangs up, or after CLOSE_TIMEOUT. (simple-websocket's names,
        which ``DeviceSocket`` uses.)"""
        with self._lock:
            self._close_locked(reason, message)

    def _close_locked(self, code: int, reason: str) -> None:
        if self._proto.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        if self.close_code is None:
            self.close_code = int(code)
        self._closing_since = time.monotonic()
        data = self._proto.send(CloseConnection(code=code, reason=reason))
        try:
            self._write(data)
        except OSError:
            pass

    def _send_control(self, event: Any) -> None:
        with self._lock:
            if self._proto.state is ConnectionState.OPEN:
                self._write(self._proto.send(event))

    def run(self, on_message: Callable[[str | bytes], None]) -> None:
        """Read until the connection ends, calling ``on_message`` with each whole message."""
        next_ping = time.monotonic() + self.ping_interval
        awaiting_pong = False
        parts: list[str | bytes] = []
        size = 0
        try:
            while True:
                now = time.monotonic()
                if self._closing_since is not None:
                    wait = self._closing_since + CLOSE_TIMEOUT - now
                    if wait <= 0:
                        return
                elif now >= next_ping:
                    if awaiting_pong:  # the previous ping went unanswered: the peer is gone
                        self.close(CloseReason.POLICY_VIOLATION, "Ping/Pong timeout")
                        continue
                    self._send_control(Ping())
                    awaiting_pong, next_ping = True, now + self.ping_interval
                    continue
                else:
                    wait = next_ping - now
                self.sock.settimeout(wait)
                try:
                    data = self.sock.recv(RECEIVE_BYTES)
                except socket.timeout:
                    continue
                if not data:  # the peer hung up (without a close frame: 1006)
                    if self.close_code is None:
                        self.close_code = CloseReason.ABNORMAL_CLOSURE
                    return
                with self._lock:
                    self._proto.receive_data(data)
                    events = list(self._proto.events())
                for event in events:
                    if isinstance(event, CloseConnection):
                        with self._lock:
                            if self.close_code is None:
                                self.close_code = event.code
                            # The peer's close (answered with the same code), or a frame wsproto
                            # could not parse (1002 protocol error, 1007 bad UTF-8, ...).
                            self._close_locked(event.code, event.reason or "")
                        if self._proto.state is ConnectionState.CLOSED:
                            return
                    elif isinstance(event, Ping):
                        self._send_control(event.response())
                    elif isinstance(event, Pong):
                        awaiting_pong = False
                    elif isinstance(event, (TextMessage, BytesMessage)) and self.open:
                        size += len(event.data)
                        if size > self.max_message_size:  # as soon as it is read, not at its end
                            self.close(CloseReason.MESSAGE_TOO_BIG, "Message is too big")
                            parts, size = [], 0
                            continue
                        parts.append(event.data)
                        if event.message_finished:
                            message = ("".join(parts) if isinstance(event, TextMessage)
                                       else b"".join(parts))  # type: ignore[arg-type]
                            parts, size = [], 0
                            on_message(message)
        except (OSError, LocalProtocolError) as exc:
            log.debug("WebSocket ended: %s", type(exc).__name__)
            if self.close_code is None:
                self.close_code = CloseReason.ABNORMAL_CLOSURE
        finally:
            self.hang_up()

    def hang_up(self) -> None:
        """End the TCP connection for both directions; the WSGI server then finds EOF and
        closes the socket itself (closing it here would make gunicorn log EBADF)."""
        with self._lock:
            if self._proto.state is ConnectionState.OPEN:
                self._closing_since = time.monotonic()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


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
