"""The device lane (server/web/device_lane.py) answers ``GET /device/ws`` exactly as Flask does:
the same matrix of upgrade requests, over real HTTP and WebSocket, to a provider with the lane
and one without it (CIBA_DEVICE_LANE=false), sharing one instance, under gunicorn's gevent worker
and under ``serve``. Compared: status, headers (but Date), bodies, and on a 101 the frames (the
greeting with a pending request, a pong) and the close code of a closing handshake. Then each
process's request counters for ``device.websocket``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import time

import pytest
import requests

from tests.support.provider_process import ProviderProcess

from .helpers import DeviceKey
from .realworld import Phone, bc_authorize, qr_from_enroll_page, seed, signed_in

pytestmark = pytest.mark.slow

KEY = base64.b64encode(os.urandom(16)).decode()  # one Sec-WebSocket-Key: equal accept keys


@pytest.fixture(scope="module", params=["gunicorn", "serve"])
def lanes(request, tmp_path_factory):
    """(lane, flask, alice's phone, bob's revoked device) on one instance."""
    root = tmp_path_factory.mktemp(f"device-lane-{request.param}")
    instance = root / "instance"
    env = {"CIBA_MAX_SOCKETS_PER_DEVICE": "1", "CIBA_SERVE_READ_TIMEOUT": "5"}
    lane = ProviderProcess(root / "lane", instance=instance, server=request.param,
                           env={**env, "CIBA_DEVICE_LANE": "true"}, name="lane")
    flask = ProviderProcess(root / "flask", instance=instance, server=request.param,
                            env={**env, "CIBA_DEVICE_LANE": "false"}, name="flask",
                            issuer=lane.issuer)
    seed(lane)
    lane.start()
    flask.start()
    try:
        phone = Phone(lane.issuer).enroll(
            qr_from_enroll_page(signed_in(lane, "alice", "alice-password"), lane))
        revoked = Phone(lane.issuer).enroll(
            qr_from_enroll_page(signed_in(lane, "bob", "bob-password"), lane))
        lane.cli("devices", "revoke", revoked.device_id)
        # A pending request: the greeting carries it (hello, then the login_request).
        assert bc_authorize(lane.issuer, binding_message="LANE 1").status_code == 200
        yield lane, flask, phone, revoked
    finally:
        lane.stop()
        flask.stop()


def upgrade(op: ProviderProcess, auth: str | None, method: str = "GET", target: str = "/device/ws",
            **headers: str | None) -> bytes:
    fields = {"Host": f"127.0.0.1:{op.port}", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13",
              "Authorization": auth, **headers}
    lines = [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return (f"{method} {target} HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()


class Conn:
    """A raw connection: the HTTP answer, then unmasked server frames (RFC 6455 §5.2)."""

    def __init__(self, op: ProviderProcess, raw: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", op.port), timeout=20)
        self.sock.sendall(raw)
        self.buf = b""

    def _need(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self) -> tuple:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
        headers = [h for h in headers if h[0].lower() != "date"]
        status = int(status_line.split()[1])
        body = b""
        if status != 101:
            length = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
            body = self._need(length)
        return status_line, headers, body

    def frame(self) -> tuple[int, bytes]:
        first, second = self._need(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._need(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._need(8))[0]
        return first & 0x0F, self._need(length)

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self.sock.close()


def exchange(op: ProviderProcess, raw: bytes, hold: bool = False) -> tuple:
    """What a client sees: the answer; on a 101 the greeting, a pong to a ping and the close
    code answering ours. ``hold``: also the Conn, left open."""
    conn = Conn(op, raw)
    status, headers, body = conn.answer()
    frames: list = []
    if status.split()[1] == "101":
        opcode, data = conn.frame()
        hello = json.loads(data)
        frames.append((opcode, hello))
        for _ in range(hello.get("pending", 0)):
            frames.append((lambda o, d: (o, json.loads(d)))(*conn.frame()))
        if not hold:
            conn.send(0x1, b'{"type":"ping"}')
            frames.append((lambda o, d: (o, json.loads(d)))(*conn.frame()))
            conn.send(0x8, struct.pack("!H", 1000))
            opcode, data = conn.frame()
            frames.append((opcode, int.from_bytes(data[:2], "big")))
    seen = (status, headers, body, frames)
    if hold:
        return seen, conn
    conn.close()
    return seen


def both(lanes, make) -> tuple:
    """Send ``make(op)`` (a fresh JWS each) to both processes; their answers must be equal."""
    lane, flask = lanes[:2]
    a, b = exchange(lane, make(lane)), exchange(flask, make(flask))
    assert a == b, f"\nlane:  {a}\nflask: {b}"
    return a


def auth(device: DeviceKey, method: str = "GET", path: str = "/device/ws", **claims) -> str:
    return "Device " + device.auth(method, path, **claims)


CASES = {
    "Authorization header": lambda p, r: upgrade(r, auth(p)),
    "device_auth in the query": lambda p, r: upgrade(
        r, None, target="/device/ws?device_auth=" + p.auth("GET", "/device/ws")),
    "the header wins over the query": lambda p, r: upgrade(
        r, auth(p), target="/device/ws?device_auth=junk"),
    "another query parameter (Flask's)": lambda p, r: upgrade(
        r, None, target="/device/ws?x=1&device_auth=" + p.auth("GET", "/device/ws")),
    "a raw non-ASCII query (Flask's)": lambda p, r: upgrade(
        r, auth(p), target="/device/ws?device_auth=\u00e9"),
    "a Cookie header (Flask's)": lambda p, r: upgrade(r, auth(p), Cookie="a=b"),
    "Connection: keep-alive, Upgrade": lambda p, r: upgrade(
        r, auth(p), Connection="keep-alive, Upgrade"),
    "no authentication": lambda p, r: upgrade(r, None),
    "another scheme": lambda p, r: upgrade(r, "Bearer " + p.auth("GET", "/device/ws")),
    "a malformed JWS": lambda p, r: upgrade(r, "Device not.a.jws"),
    "an unknown kid": lambda p, r: upgrade(r, "Device " + p.auth("GET", "/device/ws",
                                                                   kid="x" * 43)),
    "signed by another key": lambda p, r: upgrade(
        r, auth(DeviceKey(p.issuer, device_id=p.device_id))),
    "htu of another path": lambda p, r: upgrade(r, auth(p, path="/device/requests")),
    "htm POST": lambda p, r: upgrade(r, auth(p, method="POST")),
    "iat an hour old": lambda p, r: upgrade(r, auth(p, now=time.time() - 3600)),
    "an empty jti": lambda p, r: upgrade(r, auth(p, jti="")),
    "version 8 (426, Flask's)": lambda p, r: upgrade(r, auth(p), **{
        "Sec-WebSocket-Version": "8"}),
    "version 8 and no authentication (401)": lambda p, r: upgrade(r, None, **{
        "Sec-WebSocket-Version": "8"}),
    "no Sec-WebSocket-Key (400)": lambda p, r: upgrade(r, auth(p), **{"Sec-WebSocket-Key": None}),
    "Upgrade: h2c (Flask's)": lambda p, r: upgrade(r, auth(p), Upgrade="h2c"),
    "POST (Flask's)": lambda p, r: upgrade(r, auth(p), method="POST"),
    "X-Forwarded-Proto: https": lambda p, r: upgrade(r, auth(p), **{
        "X-Forwarded-Proto": "https"}),
    "X-Forwarded-Proto and no authentication": lambda p, r: upgrade(r, None, **{
        "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_both_lanes_answer_alike(lanes, case):
    phone = lanes[2]
    seen = both(lanes, lambda op: CASES[case](phone, op))
    if case == "Authorization header":  # the comparison compared something
        status, headers, body, frames = seen
        assert status.startswith("HTTP/1.1 101")
        assert [f[1]["type"] for f in frames[:-1]] == ["hello", "login_request", "pong"]
        assert frames[-1] == (0x8, 1000)


def test_a_refused_upgrade_keeps_its_connection_alike(lanes):
    """A 401 (under gunicorn the lane's worker reads the upgrade the short way,
    server/gunicorn_device.py), then another request on the same connection: answered under
    gunicorn, the connection closed under serve (which closes after every answer), alike."""
    def session(op: ProviderProcess) -> tuple:
        conn = Conn(op, upgrade(op, None))
        try:
            first = conn.answer()
            rest = conn.buf
            try:
                conn.sock.sendall(f"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: "
                                  f"127.0.0.1:{op.port}\r\nConnection: close\r\n\r\n".encode())
                while chunk := conn.sock.recv(65536):
                    rest += chunk
            except OSError:
                pass
            return first, rest.split(b"\r\n", 1)[0], rest.partition(b"\r\n\r\n")[2]
        finally:
            conn.close()

    lane, flask = lanes[:2]
    a, b = session(lane), session(flask)
    assert a == b, f"\nlane:  {a}\nflask: {b}"
    assert a[0][0].startswith("HTTP/1.1 401")
    assert a[1] == (b"HTTP/1.1 200 OK" if lane.server == "gunicorn" else b"")


def test_a_revoked_device_is_refused_alike(lanes):
    revoked = lanes[3]
    status = both(lanes, lambda op: upgrade(op, auth(revoked)))[0]
    assert " 401 " in status


def test_a_replayed_jws_is_refused_alike(lanes):
    phone, seen = lanes[2], []
    for op in lanes[:2]:
        raw = upgrade(op, auth(phone))
        seen.append((exchange(op, raw), exchange(op, raw)))
    assert seen[0] == seen[1]
    assert " 101 " in seen[0][0][0] and " 401 " in seen[0][1][0]
    assert b"jti was already used" in seen[0][1][2]


def test_a_device_over_its_socket_cap_is_refused_alike(lanes):
    phone, seen = lanes[2], []
    for op in lanes[:2]:
        first, held = exchange(op, upgrade(op, auth(phone)), hold=True)
        try:
            seen.append(exchange(op, upgrade(op, auth(phone))))
        finally:
            held.close()
    assert seen[0] == seen[1]
    assert " 429 " in seen[0][0] and ("Retry-After", "25") in seen[0][1]


def test_both_lanes_count_the_same_requests(lanes):
    """After the matrix: ciba_http_requests_total for device.websocket, by method and status."""
    counts = []
    for op in lanes[:2]:
        text = requests.get(op.url("/metrics"), timeout=30).text
        counts.append(sorted(line for line in text.splitlines() if re.match(
            r'ciba_http_requests_total\{.*endpoint="device\.websocket"', line)))
    assert counts[0] and counts[0] == counts[1]
    assert any('status="101"' in line for line in counts[0])
    assert any('status="401"' in line for line in counts[0])


def test_the_lane_answers_upgrades_and_the_setting_turns_it_off(settings, clock, alice, enroll):
    """In-process: with the lane on, a valid upgrade does not reach the Flask view; with
    CIBA_DEVICE_LANE=false it does. (The socket is closed at once: the session ends.)"""
    from dataclasses import replace

    from server import create_app

    for on in (True, False):
        app = create_app(replace(settings, device_lane=on), clock=clock)
        reached = []
        view = app.view_functions["device.websocket"]
        app.view_functions["device.websocket"] = lambda: (reached.append(1), view())[1]
        if on:
            phone = enroll(alice)  # the fixture's provider shares the instance
        mine, peer = socket.socketpair()
        peer.close()
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/device/ws", "SCRIPT_NAME": "",
                   "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                   "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
                   "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None,
                   "HTTP_HOST": "127.0.0.1", "HTTP_UPGRADE": "websocket",
                   "HTTP_CONNECTION": "Upgrade", "HTTP_SEC_WEBSOCKET_KEY": KEY,
                   "HTTP_SEC_WEBSOCKET_VERSION": "13", "werkzeug.socket": mine,
                   "HTTP_AUTHORIZATION": "Device " + phone.auth("GET", "/device/ws",
                                                                 now=clock.now())}
        statuses = []
        app.wsgi_app(environ, lambda status, headers, exc=None: statuses.append(status))
        mine.close()
        app.extensions["ciba"].housekeeper.stop()  # started by the accepted socket
        assert statuses == ["101 Switching Protocols"]
        assert reached == ([] if on else [1])
