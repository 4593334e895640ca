"""Running the provider: werkzeug's threaded server for ``serve``; gunicorn for production.

Production (many devices holding WebSockets) runs under gunicorn's gevent worker, one event
loop per process; see docs/deployment.md:

    gunicorn -k gevent -w 4 --worker-connections 10000 -b 0.0.0.0:5000 'server.wsgi:app'
"""

from __future__ import annotations

import errno
import socket
import sys

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard limit (one descriptor per device socket);
    returns the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def run(app: Flask, host: str, port: int, read_timeout: float = 30, ssl_context=None) -> int:
    """Serve until Ctrl-C (https with ``ssl_context``). A connection that sends nothing for
    ``read_timeout`` seconds while a request is read (headers or body) is dropped, so half-sent
    requests cannot hold threads forever; an accepted WebSocket clears the timeout
    (server/web/device.py)."""

    class Handler(WSGIRequestHandler):
        timeout = read_timeout

    try:
        server = make_server(host, port, app, threaded=True, request_handler=Handler,
                             ssl_context=ssl_context)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE or "in use" in str(exc):
            print(f"error: port {port} on {host} is already in use; choose another with --port",
                  file=sys.stderr)
            return 2
        raise
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
