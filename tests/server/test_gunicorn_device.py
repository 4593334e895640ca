"""server.gunicorn_device (issue 9, round 6): device upgrades read the short way by the production
worker class. Two real gunicorn servers, the stock gevent worker and ours, serve an app that
answers with the environ it was given (tests/support/environ_echo.py). For every request of the
matrix, over raw sockets, the bytes that come back must be the same (the Date header and the
app's own mark of the short way aside): the same environ, the same refusal, the same keep-alive,
the same takeover. And the short way must actually be taken for the plain upgrades (else this
test would compare gunicorn with itself), and not for anything else.

The device lane's own matrix (tests/server/devices/test_device_lane.py) runs the real provider
the short way (lane on) against gunicorn's full way (lane off) as well."""

from __future__ import annotations

import re
import socket

import pytest

from tests.support.provider_process import stock_and_ours

pytestmark = pytest.mark.slow

JWS = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2lnbmF0dXJlX2-w"


@pytest.fixture(scope="module")
def servers():
    with stock_and_ours("tests.support.environ_echo:app", "/", "--keep-alive", "5") as ports:
        yield ports


def upgrade(target: str = "/device/ws", method: str = "GET", version: str = "1.1",
            auth: str | None = f"Device {JWS}", extra: str = "", **fields: str | None) -> bytes:
    base = {"Host": "127.0.0.1:8000", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
            "Authorization": auth}
    base.update({k.replace("_", "-"): v for k, v in fields.items()})
    lines = "".join(f"{k}: {v}\r\n" for k, v in base.items() if v is not None)
    return f"{method} {target} HTTP/{version}\r\n{lines}{extra}\r\n".encode("latin-1")


CLOSE = b"GET /end HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.closed = sock, b"", False

    def more(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            chunk = b""
        self.closed = not chunk
        self.buf += chunk
        return bool(chunk)

    def answer(self, start: int) -> None:
        """Read one answer beginning at ``start`` (to the close for a 101 or no length)."""
        while b"\r\n\r\n" not in self.buf[start:] and self.more():
            pass
        head, sep, _ = self.buf[start:].partition(b"\r\n\r\n")
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        if not sep or length is None or head.startswith(b"HTTP/1.1 101"):
            while self.more():
                pass
            return
        while len(self.buf) < start + len(head) + 4 + int(length[1]) and self.more():
            pass


def exchange(port: int, *parts: bytes) -> tuple[bytes, bool]:
    """Send each part on one connection, the next once the previous answer has come, then a
    request with Connection: close while the connection is open; read until the server closes
    it. Returns what came back (Date, the port and the short-way mark masked) and whether the
    first answer came the short way."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = Reader(sock)
        for part in (*parts, CLOSE):
            if reader.closed:
                break
            start = len(reader.buf)
            try:
                sock.sendall(part)
            except OSError:
                break
            reader.answer(start)
            if part is not CLOSE and part.count(b"GET ") == 2:  # pipelined: two answers
                reader.answer(len(reader.buf.partition(b"\r\n\r\n")[0]) + 4)
        received = reader.buf
    short = b"X-Short-Way: yes" in received.split(b"\r\n\r\n", 1)[0]
    received = re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", received)
    received = received.replace(b'"%d"' % port, b'"PORT"')
    return re.sub(rb"X-Short-Way: (yes|no)", b"X-Short-Way: -", received), short


#: Plain upgrades: ours must take the short way and answer exactly as gunicorn does.
PLAIN = {
    "a device upgrade (refused: 401)": upgrade(),
    "the JWS in the query": upgrade(f"/device/ws?device_auth={JWS}", auth=None),
    "a percent-encoded query": upgrade("/device/ws?device_auth=a%2Eb&x=1+2"),
    "field names in any case, spaces around values": upgrade(
        extra="uPgRaDe-Extra:   spaced value \r\nX-Empty:\r\n"),
    "X-Forwarded-Proto https from a trusted peer": upgrade(X_Forwarded_Proto="https"),
    "X-Forwarded-Proto http": upgrade(X_Forwarded_Proto="http"),
    "X-Forwarded-Ssl on": upgrade(X_Forwarded_Ssl="on"),
    "X-Forwarded-For and Host": upgrade(X_Forwarded_For="203.0.113.7", X_Forwarded_Host="a.b"),
    "no Host": upgrade(Host=None),
    "a cookie": upgrade(Cookie="session=abc"),
    "taken over (101)": upgrade(auth="take-over"),
    "Upgrade: h2c (HTTP/2 is off: the app's)": upgrade(Upgrade="h2c"),
}

#: Anything else: ours must leave it to gunicorn (and so answer exactly as gunicorn does).
OTHER = {
    "POST": upgrade(method="POST"),
    "HTTP/1.0": upgrade(version="1.0"),
    "another path": upgrade("/device/wsx"),
    "a trailing slash": upgrade("/device/ws/"),
    "a fragment": upgrade("/device/ws?a#b"),
    "a raw non-ASCII target": upgrade("/device/ws?device_auth=\u00e9"),
    "an underscore in a field name (dropped)": upgrade(extra="X_Forwarded_Proto: https\r\n"),
    "a field twice": upgrade(extra="X-Twice: 1\r\nX-Twice: 2\r\n"),
    "Host twice (400)": upgrade(extra="Host: other\r\n"),
    "Content-Length: 0": upgrade(Content_Length="0"),
    "Transfer-Encoding: chunked": upgrade(Transfer_Encoding="chunked", extra="") + b"0\r\n\r\n",
    "Expect: 100-continue": upgrade(Expect="100-continue"),
    "two scheme headers that disagree (400)": upgrade(X_Forwarded_Proto="https",
                                                      X_Forwarded_Ssl="off"),
    "a folded line (400)": upgrade(extra="X-Fold: a\r\n b\r\n"),
    "a tab in a value": upgrade(extra="X-Tab: a\tb\r\n"),
    "a Latin-1 value": upgrade(extra="X-Latin: caf\u00e9\r\n"),
    "a space before the colon (400)": upgrade(extra="X-Space : a\r\n"),
    "a Content-Type": upgrade(Content_Type="text/plain"),
    "a line over the limit (431/400)": upgrade(extra="X-Long: " + "a" * 9000 + "\r\n"),
    "pipelined: a second request behind": upgrade() + upgrade(),
}


@pytest.mark.parametrize("case", list(PLAIN))
def test_plain_upgrades_take_the_short_way_and_answer_as_gunicorn(servers, case):
    stock, ours = servers
    raw = PLAIN[case]
    expected, stock_short = exchange(stock, raw)
    got, short = exchange(ours, raw)
    assert expected.startswith(b"HTTP/1.1 ") and not stock_short
    assert short, got[:300]
    assert got == expected


@pytest.mark.parametrize("case", list(OTHER))
def test_anything_else_is_left_to_gunicorn(servers, case):
    stock, ours = servers
    expected, _ = exchange(stock, OTHER[case])
    got, short = exchange(ours, OTHER[case])
    assert expected.startswith(b"HTTP/1.")
    assert not short
    assert got == expected


def test_a_refused_upgrade_keeps_the_connection_for_gunicorn(servers):
    """A 401 the short way, then the next requests on the same connection: gunicorn's loop."""
    stock, ours = servers
    parts = (upgrade(), b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n",
             b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    expected, _ = exchange(stock, *parts)
    got, short = exchange(ours, *parts)
    assert expected.count(b"HTTP/1.1 401") == 3 and b'"PATH_INFO": "/last"' in expected
    assert b'"PATH_INFO": "/end"' not in expected  # /last closed the connection
    assert short
    assert got == expected


def test_an_untrusted_peer_cannot_set_the_scheme():
    """X-Forwarded-Proto from an address outside forwarded_allow_ips: http, as gunicorn."""
    from gunicorn.config import Config

    from server.gunicorn_device import DeviceAccept

    cfg = Config()
    cfg.set("forwarded_allow_ips", "10.0.0.1")
    worker = type("W", (), {"cfg": cfg})()
    accept = DeviceAccept(worker)
    raw = upgrade(X_Forwarded_Proto="https")
    trusted, _ = accept.environ(raw, ("10.0.0.1", 4000), ("127.0.0.1", 8000))
    untrusted, _ = accept.environ(raw, ("10.0.0.2", 4000), ("127.0.0.1", 8000))
    assert trusted["wsgi.url_scheme"] == "https"
    assert untrusted["wsgi.url_scheme"] == "http"


def test_the_short_way_is_off_for_other_apps_and_settings():
    from gunicorn.config import Config

    from server.gunicorn_device import DeviceAccept
    from tests.support.environ_echo import app

    def worker(wsgi, **settings):
        cfg = Config()
        for k, v in settings.items():
            cfg.set(k, v)
        return type("W", (), {"cfg": cfg, "wsgi": wsgi})()

    assert DeviceAccept.usable(worker(app))
    assert not DeviceAccept.usable(worker(lambda e, s: []))  # not the provider
    assert not DeviceAccept.usable(worker(app, keepalive=0))
    assert not DeviceAccept.usable(worker(app, proxy_protocol="v1"))
    assert not DeviceAccept.usable(worker(app, http2_cleartext="upgrade"))
    assert not DeviceAccept.usable(worker(app, pre_request=lambda w, r: None))


def test_full_collections_run_on_the_clock_and_free_old_cycles():
    """FullCollections: no full collection by allocation count, one per interval when the
    collector's own rule asks for it (enough middle-generation collections, the oldest grown by
    a quarter); an old cycle (a session's, after its socket ended) is freed by it."""
    import gc
    import weakref

    import gevent

    from server.gunicorn_gc import FullCollections

    class Node:
        pass

    before = gc.get_threshold()
    gc.freeze()  # this process's own objects out of the way: the oldest generation starts empty
    collections = FullCollections(interval=0.05)
    try:
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] > 10 ** 6
        node = Node()
        node.cycle = node
        gone = weakref.ref(node)
        gc.collect(1)
        gc.collect(1)  # the cycle is in the oldest generation now
        del node
        for _ in range(30):  # allocations: the oldest generation's count passes its default
            gc.collect(1)
        assert gone() is not None  # young collections do not reach it
        deadline = gevent.get_hub().loop.now() + 30
        while gone() is not None and gevent.get_hub().loop.now() < deadline:
            gevent.sleep(0.05)
        assert gone() is None

        def full() -> int:
            return gc.get_stats()[2]["collections"]

        def wait_for_a_tick() -> None:
            for _ in range(30):
                gc.collect(1)
            gevent.sleep(0.3)

        base = [Node() for _ in range(20_000)]  # many live sockets' objects, reaching the oldest
        gc.collect(1)
        gc.collect(1)
        wait_for_a_tick()
        steady = full()
        wait_for_a_tick()  # nothing grew: no rescan of them
        wait_for_a_tick()
        assert full() == steady and len(base) == 20_000
    finally:
        collections.stop()
        gc.unfreeze()
    assert gc.get_threshold() == before


def test_the_providers_worker_collects_on_the_clock(servers):
    import requests

    stock, ours = (requests.get(f"http://127.0.0.1:{port}/gc", timeout=30).json()
                   for port in servers)
    assert stock[2] == 10 and ours[:2] == stock[:2] and ours[2] > 10 ** 6
