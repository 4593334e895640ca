"""gunicorn's gevent worker, sending each response's headers and first body bytes together.

gunicorn (27) writes a response's status line and headers in one ``sendall`` and then each body
chunk in another, so a small JSON answer (bc-authorize, a token poll) costs two send system calls
and, with Nagle's algorithm off, two TCP segments. ``OneSendResponse`` holds the headers until the
first non-empty body chunk and sends both at once when the body is framed by Content-Length or by
the connection's close (not chunked). The bytes on the wire are the same; only the number of
sends changes. Everything else goes through gunicorn's own code: chunked and streamed bodies after
their first chunk, HEAD and other bodiless answers (1xx, 204, 304), ``sendfile``, empty bodies,
WebSocket upgrades (101, or sockets the app takes over).

Use: ``gunicorn -k server.gunicorn_worker.GeventWorker`` (server.gunicorn_conf chooses it, so
``ciba-provider run`` and the documented gunicorn command use it).
"""

from __future__ import annotations

from gevent.server import StreamServer
from gunicorn.http import wsgi
from gunicorn.util import to_bytestring, write
from gunicorn.workers import ggevent
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from .gunicorn_device import DeviceAccept
from .gunicorn_gc import FullCollections
from .web import ws_transport


class OneSendResponse(wsgi.Response):
    """A gunicorn response whose headers leave with the first body bytes (see the module)."""

    def header_bytes(self) -> bytes:
        """The status line and headers, exactly as ``Response.send_headers`` writes them."""
        tosend = self.default_headers()
        tosend.extend(["%s: %s\r\n" % (k, v) for k, v in self.headers])
        return to_bytestring("%s\r\n" % "".join(tosend), "latin-1")

    def write(self, arg: bytes) -> None:
        if (self.headers_sent or self.chunked or self._omits_body or not arg
                or not isinstance(arg, bytes)):
            super().write(arg)
            return
        if self.response_length is not None:  # never more than Content-Length, as gunicorn
            arg = arg[:self.response_length]
        head = self.header_bytes()
        self.headers_sent = True
        self.sent += len(arg)
        write(self.sock, head + arg)


class LeavingStreamServer(StreamServer):
    """gevent's server, which closes each connection once its handler returns, except a socket
    a detached device WebSocket now serves (``ws_transport.TAKEN``; gunicorn_device)."""

    def do_close(self, sock, *args) -> None:  # type: ignore[no-untyped-def]
        if sock not in ws_transport.TAKEN:
            super().do_close(sock, *args)


class GeventWorker(_GeventWorker):
    """gunicorn's gevent worker answering with ``OneSendResponse``, with device upgrades
    (``GET /device/ws``) read the short way and full garbage collections on a clock
    (server.gunicorn_device, server.gunicorn_gc) when it serves the provider."""

    device_accept: DeviceAccept | None = None
    full_collections: FullCollections | None = None

    def init_process(self) -> None:
        # gunicorn builds HTTP/1 responses through ``wsgi.create`` with the module's
        # ``Response`` (no hook for HTTP/1): this worker process uses ours.
        wsgi.Response = OneSendResponse
        # gunicorn's ``run`` makes its servers from the module's ``StreamServer``: ours leaves
        # a socket taken over by a device open.
        ggevent.StreamServer = LeavingStreamServer
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        if DeviceAccept.usable(self):  # the provider, holding device sockets
            self.device_accept = DeviceAccept(self)
            self.full_collections = FullCollections()

    def handle(self, listener, client, addr) -> None:  # type: ignore[no-untyped-def]
        accept = self.device_accept
        if accept is not None:
            client.setblocking(1)  # as gunicorn's gevent worker
            if accept.serve(listener, client, addr):
                return
        super().handle(listener, client, addr)
