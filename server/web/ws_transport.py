"""A lean server-side WebSocket (RFC 6455) on the socket the WSGI server hands over, for the
device sockets at ``/device/ws`` (docs/device-protocol.md §5); the opening handshake and the
WSGI middleware that runs an accepted socket are in ws_handshake.py.

Why not simple-websocket (flask-sock): it spends a second greenlet (a thread under ``serve``) per
socket reading in the background, re-parses the handshake through h11, offers
permessage-deflate, and keeps the Flask request (and its deep stack) alive for the socket's whole
life. With 10,000 devices that was 54 KiB and 3.3 ms of CPU per socket (docs/performance.md).
``WebSocket`` reads frames with wsproto's frame layer, answers pings, pings the peer every
``ping_interval`` seconds, and ends the socket when the peer closes, goes silent (close 1008
``Ping/Pong timeout``) or sends a message over ``max_message_size`` (1009).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import struct
import threading
import time
import weakref
from typing import Any, Callable

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

from .ws_handshake import server_socket

log = logging.getLogger(__name__)

#: Seconds a socket we closed waits for the peer's close frame (RFC 6455 §7.1.1) before the
#: TCP connection is dropped anyway.
CLOSE_TIMEOUT = 5.0
RECEIVE_BYTES = 4096
#: The environ key by which a server offers the connection's own socket to be detached: it then
#: leaves open a socket found in ``TAKEN`` (server/gunicorn_device.py, server/gunicorn_worker.py).
HANDOVER = "ciba.socket_handover"
#: Server sockets a detached WebSocket serves without a duplicate, until it ends them.
TAKEN: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()


class WebSocket:
    """One accepted server-side WebSocket. ``send`` and ``close`` may be called from any
    greenlet or thread. It runs in one of two ways, with the same frame and timer logic:

    - ``run``: blocking, in the thread (``serve``) or greenlet that serves the connection;
    - ``detach`` (gevent, plain TCP): no greenlet of its own while idle. Two libev watchers
      (readable, ping timer) spawn a short-lived greenlet when there is something to do, so an
      idle device costs its objects and no stack (~10 KiB less per socket than a greenlet).
    """

    def __init__(self, sock: socket.socket, ping_interval: float, max_message_size: int,
                 duplicate: bool = False) -> None:
        self.sock = sock
        self._duplicate = duplicate  # a descriptor of our own (``accepted``), not the server's
        self.ping_interval = ping_interval
        self.max_message_size = max_message_size
        self.close_code: int | None = None  # what the peer sent, or what we sent first
        self._proto = Connection(ConnectionType.SERVER)
        self._lock = threading.Lock()
        self._closing_since: float | None = None
        # Corked from the start: nothing (a close from a revocation racing the handshake)
        # may reach the socket before the 101 that ``cork`` puts in front.
        self._corked: bytearray | None = bytearray()
        self._awaiting_pong = False
        self._parts: list[str | bytes] = []
        self._size = 0
        self._on_message: Callable[[str | bytes], None] | None = None
        self._on_end: Callable[[], None] | None = None
        self._watchers: list[Any] = []
        self._loop: Any = None

    @property
    def open(self) -> bool:
        return self._proto.state is ConnectionState.OPEN

    def cork(self, first: bytes) -> None:
        """Put ``first`` (the 101) in front of what is held until ``uncork``: one write, not
        one per message, for the handshake and the greeting."""
        with self._lock:
            self._corked = bytearray(first) + (self._corked or b"")

    def uncork(self) -> None:
        with self._lock:
            data, self._corked = self._corked, None
            if data:
                self._send(data)

    def _write(self, data: bytes) -> None:
        if self._corked is not None:
            self._corked += data
        else:
            self._send(data)

    def _send(self, data: bytes | bytearray) -> None:
        """``sendall``, tried as one ``send`` first: a frame (or the 101 with the greeting) is
        almost always taken whole, and gevent's ``sendall`` asks the kernel for the send buffer's
        size (a getsockopt) before each write: 1.3% of a reconnect storm's samples."""
        sent = self.sock.send(data)
        if sent < len(data):
            self.sock.sendall(memoryview(data)[sent:])

    def send(self, text: str) -> None:
        """Send one text message; OSError (or ConnectionError) when the socket is gone."""
        with self._lock:
            if self._proto.state is not ConnectionState.OPEN:
                raise ConnectionError("the WebSocket is closed")
            self._write(text_frame(text))

    def close(self, reason: int = CloseReason.NORMAL_CLOSURE, message: str = "") -> None:
        """Start the closing handshake (RFC 6455 §5.5.1) with close code ``reason``; the socket
        ends when the peer answers, hangs up, or after CLOSE_TIMEOUT. (simple-websocket's
        names, which ``DeviceSocket`` uses.)"""
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
        if self._watchers:  # detached: nothing else would wake us within CLOSE_TIMEOUT
            self._close_timer()

    def _send_control(self, event: Any) -> None:
        with self._lock:
            if self._proto.state is ConnectionState.OPEN:
                self._write(self._proto.send(event))

    # -- the logic both ways share -------------------------------------------------------------
    def _tick(self) -> bool:
        """Ping time (RFC 6455 §5.5.2): ping, or close 1008 when the last ping is unanswered.
        False once the socket is over (a close unanswered for CLOSE_TIMEOUT)."""
        if self._closing_since is not None:
            return time.monotonic() - self._closing_since < CLOSE_TIMEOUT
        if self._awaiting_pong:  # the previous ping went unanswered: the peer is gone
            self.close(CloseReason.POLICY_VIOLATION, "Ping/Pong timeout")
        else:
            self._send_control(Ping())
            self._awaiting_pong = True
        return True

    def _receive(self, data: bytes) -> bool:
        """Handle bytes read from the peer; False once the socket is over."""
        if not data:  # the peer hung up (without a close frame: 1006)
            if self.close_code is None:
                self.close_code = CloseReason.ABNORMAL_CLOSURE
            return False
        with self._lock:
            self._proto.receive_data(data)
            events = list(self._proto.events())
        for event in events:
            if isinstance(event, CloseConnection):
                with self._lock:
                    if self.close_code is None:
                        self.close_code = event.code
                    # The peer's close (answered with the same code), or a frame wsproto could
                    # not parse (1002 protocol error, 1007 bad UTF-8, ...).
                    self._close_locked(event.code, event.reason or "")
                if self._proto.state is ConnectionState.CLOSED:
                    return False
            elif isinstance(event, Ping):
                self._send_control(event.response())
            elif isinstance(event, Pong):
                self._awaiting_pong = False
            elif isinstance(event, (TextMessage, BytesMessage)) and self.open:
                self._size += len(event.data)
                if self._size > self.max_message_size:  # as soon as it is read, not at its end
                    self.close(CloseReason.MESSAGE_TOO_BIG, "Message is too big")
                    self._parts, self._size = [], 0
                    continue
                self._parts.append(event.data)
                if event.message_finished:
                    parts, self._parts, self._size = self._parts, [], 0
                    joiner: Any = "" if isinstance(event, TextMessage) else b""
                    message = joiner.join(parts)
                    if self._on_message is not None:
                        self._on_message(message)
        return True

    def _ended(self, exc: BaseException) -> None:
        log.debug("WebSocket ended: %s", type(exc).__name__)
        if self.close_code is None:
            self.close_code = CloseReason.ABNORMAL_CLOSURE

    # -- blocking --------------------------------------------------------------------------------
    def run(self, on_message: Callable[[str | bytes], None]) -> None:
        """Read until the connection ends, calling ``on_message`` with each whole message."""
        self._on_message = on_message
        next_ping = time.monotonic() + self.ping_interval
        try:
            while True:
                now = time.monotonic()
                if self._closing_since is not None:
                    wait = self._closing_since + CLOSE_TIMEOUT - now
                    if wait <= 0:
                        return
                elif now >= next_ping:
                    self._tick()
                    next_ping = now + self.ping_interval
                    continue
                else:
                    wait = next_ping - now
                self.sock.settimeout(wait)
                try:
                    data = self.sock.recv(RECEIVE_BYTES)
                except socket.timeout:
                    continue
                if not self._receive(data):
                    return
        except (OSError, LocalProtocolError) as exc:
            self._ended(exc)
        finally:
            self.hang_up()

    # -- detached (gevent) -----------------------------------------------------------------------
    def detach(self, on_message: Callable[[str | bytes], None],
               on_end: Callable[[], None]) -> None:
        """Serve from the gevent loop's watchers and return at once; ``on_end`` runs once when
        the socket is over. The socket must be gevent's, on plain TCP, and owned here (see
        ``detachable``)."""
        import gevent

        self._on_message, self._on_end = on_message, on_end
        self._loop = loop = gevent.get_hub().loop
        self.sock.settimeout(None)
        reader = loop.io(self.sock.fileno(), 1)  # 1: readable
        pinger = loop.timer(self.ping_interval, self.ping_interval)
        self._watchers = [reader, pinger]
        if not self._duplicate:
            TAKEN.add(self.sock)  # the server's socket, from now on ours to close
        reader.start(self._spawn, self._readable)
        pinger.start(self._spawn, self._timed)
        if self._closing_since is not None:  # closed while greeting (a revoked device)
            self._close_timer()

    def _close_timer(self) -> None:
        timer = self._loop.timer(CLOSE_TIMEOUT + 0.05)
        timer.start(self._spawn, self._timed)
        self._watchers.append(timer)

    def _spawn(self, work: Callable[[], None]) -> None:
        """A watcher's callback runs in gevent's hub, where nothing may block: hand the work to
        a greenlet that lives only as long as it."""
        import gevent

        if self._watchers:
            if work == self._readable:
                self._watchers[0].stop()  # one reader at a time; restarted when it is done
            gevent.spawn(work)

    def _readable(self) -> None:
        try:
            alive = self._receive(self.sock.recv(RECEIVE_BYTES))
        except (OSError, LocalProtocolError) as exc:
            self._ended(exc)
            alive = False
        except Exception:  # a bug, not the peer: end this socket, keep the process serving
            log.exception("device WebSocket failed")
            self._ended(RuntimeError())
            alive = False
        if not alive:
            self._end()
        elif self._watchers:
            self._watchers[0].start(self._spawn, self._readable)

    def _timed(self) -> None:
        try:
            alive = self._tick()
        except (OSError, LocalProtocolError) as exc:
            self._ended(exc)
            alive = False
        except Exception:
            log.exception("device WebSocket failed")
            self._ended(RuntimeError())
            alive = False
        if not alive:
            self._end()

    def _end(self) -> None:
        watchers, self._watchers = self._watchers, []
        if not watchers:
            return  # ended already
        for watcher in watchers:
            watcher.stop()
            watcher.close()
        self.hang_up()
        TAKEN.discard(self.sock)
        try:
            self.sock.close()  # detached: this socket is ours alone
        except OSError:
            pass
        if self._on_end is not None:
            self._on_end()

    def release(self) -> None:
        """The upgrade did not happen (or the session is over): close our duplicate; the
        server's own socket stays the server's to answer on and close."""
        if self._duplicate:
            self.sock.close()

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


def text_frame(text: str) -> bytes:
    """One whole, unmasked text frame (RFC 6455 §5.2: FIN, opcode 0x1; §5.1: a server MUST NOT
    mask; §5.2: the length in 7 bits, or 126 and 16 bits, or 127 and 64 bits), the bytes
    wsproto's ``send(Message(...))`` writes. Why: wsproto's general framing (extensions, an
    outbound opcode for fragments, copies into bytearrays) was 2% of a reconnect storm's
    samples, for the greeting alone. Nothing in wsproto's state depends on a whole data frame
    sent (only a close changes it)."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def accepted(environ: dict, ping_interval: float,
             max_message_size: int) -> tuple[WebSocket, bool]:
    """The WebSocket on the connection the WSGI server hands over, and whether it can be
    ``detach``ed: under gunicorn's gevent worker on plain TCP, on the server's own socket when
    the server offers it (``HANDOVER``: the device short way), else on a duplicate of its
    descriptor so that gunicorn's greenlet can finish and close its copy. Not under ``serve``
    nor TLS (the TLS state cannot be duplicated): ``run`` blocks there instead."""
    sock = environ.get("gunicorn.socket")
    if sock is None or isinstance(sock, ssl.SSLSocket) or not _gevent_socket(sock):
        return WebSocket(server_socket(environ), ping_interval, max_message_size), False
    if environ.get(HANDOVER):
        return WebSocket(sock, ping_interval, max_message_size), True
    own = type(sock)(sock.family, sock.type, sock.proto, os.dup(sock.fileno()))
    return WebSocket(own, ping_interval, max_message_size, duplicate=True), True


def _gevent_socket(sock: socket.socket) -> bool:
    try:
        from gevent import monkey
        from gevent import socket as gsocket
    except ImportError:
        return False
    return monkey.is_module_patched("socket") and isinstance(sock, gsocket.socket)
