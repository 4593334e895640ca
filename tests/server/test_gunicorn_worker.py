"""server.gunicorn_worker (issue 9, round 5): gunicorn's gevent worker sending each response's
headers with its first body bytes. Two real gunicorn servers, the stock gevent worker and ours,
serve the same app (tests/support/wsgi_shapes.py); every shape of answer, over raw sockets,
must come back byte for byte the same (the Date header aside): one known-length chunk, an error
answer, several chunks, a chunked stream, empty and bodiless answers (HEAD, 204), a body longer
than its Content-Length, a file (sendfile), the write() callable, a 101 upgrade, an app that
raises (gunicorn's 500), HTTP/1.0, and several requests on one kept-alive connection."""

from __future__ import annotations

import re
import socket

import pytest

from tests.support.provider_process import stock_and_ours

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def servers():
    with stock_and_ours("tests.support.wsgi_shapes:app", "/empty") as ports:
        yield ports


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on one connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", received)


def request(method: str, path: str, last: bool = True, version: str = "1.1") -> bytes:
    close = "Connection: close\r\n" if last and version == "1.1" else ""
    return f"{method} {path} HTTP/{version}\r\nHost: t\r\n{close}\r\n".encode()


SHAPES = ["/one", "/bad", "/stream", "/chunked", "/empty", "/nocontent", "/over", "/file",
          "/write", "/upgrade", "/raises"]


@pytest.mark.parametrize("path", SHAPES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_every_answer_is_byte_identical_to_gunicorns(servers, method, path):
    stock, ours = servers
    raw = request(method, path)
    expected = exchange(stock, raw)
    assert expected.startswith(b"HTTP/1.1 ")
    assert exchange(ours, raw) == expected


@pytest.mark.parametrize("path", ["/one", "/chunked", "/stream"])
def test_http_1_0_answers_are_byte_identical(servers, path):
    stock, ours = servers
    raw = request("GET", path, version="1.0")
    assert exchange(ours, raw) == exchange(stock, raw)


def test_kept_alive_connection_answers_in_order_byte_identical(servers):
    stock, ours = servers
    raw = b"".join([request("GET", "/one", last=False), request("POST", "/bad", last=False),
                    request("GET", "/chunked", last=False), request("HEAD", "/one", last=False),
                    request("GET", "/stream", last=False), request("GET", "/one")])
    expected = exchange(stock, raw)
    assert expected.count(b"HTTP/1.1 ") == 6
    assert exchange(ours, raw) == expected
