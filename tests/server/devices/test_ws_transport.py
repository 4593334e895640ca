"""The device WebSocket's own transport (server/web/ws_transport.py) against a real provider,
under ``serve`` (werkzeug, a thread per socket) and gunicorn's gevent worker (a greenlet per
socket): the opening handshake's refusals (RFC 6455 §4.2.1, §4.2.2), close codes, oversized
messages split over fragments, pings both ways, a silent peer, an abrupt disconnect, and a
half-sent handshake. Clients: websocket-client, and wsproto on a plain socket where a test must
misbehave (never answer a ping, send an unmasked frame)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
from pathlib import Path

import pytest
import requests
import websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

from tests.support.provider_process import ProviderProcess

from .realworld import Phone, bc_authorize, qr_from_enroll_page, seed, signed_in

pytestmark = pytest.mark.slow

PING_INTERVAL = 1  # seconds (CIBA_WS_PING_INTERVAL); the protocol's default is 25


def provider(tmp_path_factory, server: str, **env: str):
    env = {"CIBA_MAX_SOCKETS_PER_DEVICE": "2", "CIBA_SERVE_READ_TIMEOUT": "2", **env}
    with ProviderProcess(tmp_path_factory.mktemp(server), env=env, server=server) as process:
        seed(process)
        yield process


@pytest.fixture(scope="module", params=["serve", "gunicorn"])
def op(request, tmp_path_factory):
    yield from provider(tmp_path_factory, request.param)


@pytest.fixture(scope="module", params=["serve", "gunicorn"])
def fast_ping_op(request, tmp_path_factory):
    """Pings every PING_INTERVAL: a client must read all the time or be dropped."""
    yield from provider(tmp_path_factory, request.param,
                        CIBA_WS_PING_INTERVAL=str(PING_INTERVAL))


def enrolled_phone(op) -> Phone:
    session = signed_in(op, "alice", "alice-password")
    return Phone(op.issuer).enroll(qr_from_enroll_page(session, op), "Alice's phone")


@pytest.fixture
def phone(op):
    return enrolled_phone(op)


def upgrade_request(op, phone, **headers) -> bytes:
    fields = {"Host": f"127.0.0.1:{op.port}", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
              "Sec-WebSocket-Version": "13",
              "Authorization": f"Device {phone.auth('GET', '/device/ws')}", **headers}
    lines = [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return ("GET /device/ws HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()


def http_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    status = int(status_line.split()[1])
    while status != 101 and len(rest) < int(headers.get("content-length", 0)):
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest


class RawDevice:
    """wsproto's client on a plain socket: sends and answers only what a test tells it to."""

    def __init__(self, op, phone) -> None:
        self.sock = socket.create_connection(("127.0.0.1", op.port), timeout=15)
        self.ws = WSConnection(ConnectionType.CLIENT)
        auth = f"Device {phone.auth('GET', '/device/ws')}".encode()
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{op.port}", target="/device/ws",
                                               extra_headers=[(b"authorization", auth)])))
        self.events: list = []
        accepted = self.next_event()
        assert isinstance(accepted, AcceptConnection), accepted

    def next_event(self):
        while not self.events:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.events.extend(self.ws.events())
        return self.events.pop(0)

    def until(self, kind, timeout: float = 15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.next_event()
            if isinstance(event, kind):
                return event
        raise AssertionError(f"no {kind.__name__} within {timeout} s")

    def close(self) -> None:
        self.sock.close()


def close_frame(ws: websocket.WebSocket, timeout: float = 15) -> tuple[int, bytes]:
    ws.settimeout(timeout)
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big"), data[2:]


def test_the_handshake_answers_101_with_the_accept_key_and_no_extension(op, phone):
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", op.port), timeout=15) as sock:
        sock.sendall(upgrade_request(op, phone, **{
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}))
        status, headers, rest = http_answer(sock)
        assert status == 101
        expected = base64.b64encode(hashlib.sha1(
            key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        assert headers["sec-websocket-accept"] == expected  # RFC 6455 §4.2.2 item 5.4
        assert headers["upgrade"].lower() == "websocket"
        assert "upgrade" in headers["connection"].lower()
        assert "sec-websocket-extensions" not in headers  # compression is never negotiated
        while len(rest) < 2:
            rest += sock.recv(4096)
        assert rest[0] == 0x81  # the first frame is text, unfragmented, uncompressed: hello
        length = rest[1] & 0x7F
        while len(rest) < 2 + length:
            rest += sock.recv(4096)
        assert json.loads(rest[2:2 + length])["type"] == "hello"


@pytest.mark.parametrize("headers, status", [
    ({"Sec-WebSocket-Version": "8"}, 426),
    ({"Sec-WebSocket-Key": "too-short"}, 400),
    ({"Sec-WebSocket-Key": None}, 400),
])
def test_a_bad_opening_handshake_is_refused_with_a_json_error(op, phone, headers, status):
    with socket.create_connection(("127.0.0.1", op.port), timeout=15) as sock:
        sock.sendall(upgrade_request(op, phone, **headers))
        got, answer_headers, body = http_answer(sock)
    assert got == status
    if status == 426:  # RFC 6455 §4.2.2: the versions the server speaks
        assert answer_headers["sec-websocket-version"] == "13"
    else:
        assert b"invalid_request" in body


def test_a_refused_handshake_holds_no_socket_slot(op, phone):
    """A refused handshake does not hold one of the device's socket slots."""
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", op.port), timeout=15) as sock:
            sock.sendall(upgrade_request(op, phone, **{"Sec-WebSocket-Version": "8"}))
            assert http_answer(sock)[0] == 426
    assert phone.connect()["type"] == "hello"
    phone.close()


def test_revocation_sends_device_revoked_then_close_1000(op, phone):
    phone.connect()
    op.cli("devices", "revoke", phone.device_id)  # reaches the socket within a few seconds
    assert phone.receive_type("device_revoked", timeout=20) == {"type": "device_revoked"}
    code, reason = close_frame(phone.ws)
    assert code == 1000 and reason == b"device revoked"
    phone.close()


def test_a_message_over_16_kib_in_fragments_closes_with_1009(op, phone):
    phone.connect()
    first = "[" + " " * 8_000
    phone.ws.send_frame(websocket.ABNF.create_frame(first, websocket.ABNF.OPCODE_TEXT, fin=0))
    for _ in range(2):  # continuation frames; the third passes 16 KiB
        phone.ws.send_frame(websocket.ABNF.create_frame(" " * 8_000,
                                                        websocket.ABNF.OPCODE_CONT, fin=0))
    assert close_frame(phone.ws)[0] == 1009
    phone.close()


def test_a_message_in_fragments_under_the_limit_is_one_message(op, phone):
    phone.connect()
    phone.ws.send_frame(websocket.ABNF.create_frame('{"type":', websocket.ABNF.OPCODE_TEXT, fin=0))
    phone.ws.send_frame(websocket.ABNF.create_frame(' "ping"}', websocket.ABNF.OPCODE_CONT, fin=1))
    assert phone.receive_type("pong") == {"type": "pong"}
    phone.close()


def test_the_server_answers_a_websocket_ping_with_its_payload(op, phone):
    phone.connect()
    phone.ws.ping(b"are you there")
    phone.ws.settimeout(15)
    while True:
        opcode, data = phone.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_PONG:
            break
    assert data == b"are you there"
    phone.close()


def test_a_device_answering_pings_stays_connected(fast_ping_op):
    """websocket-client answers the server's pings by itself; several intervals pass."""
    op = fast_ping_op
    phone = enrolled_phone(op)
    phone.connect()
    deadline = time.monotonic() + 4 * PING_INTERVAL
    pings = 0
    phone.ws.settimeout(15)
    while time.monotonic() < deadline:
        opcode, _ = phone.ws.recv_data(control_frame=True)  # answers pings as it reads them
        assert opcode != websocket.ABNF.OPCODE_CLOSE
        pings += opcode == websocket.ABNF.OPCODE_PING
    assert pings >= 2
    bc_authorize(op.url(), binding_message="AFTER PINGS")
    while phone.receive_type("login_request")["request"]["binding_message"] != "AFTER PINGS":
        pass
    phone.close()


def test_a_silent_device_is_closed_with_1008_ping_pong_timeout(fast_ping_op):
    op = fast_ping_op
    device = RawDevice(op, enrolled_phone(op))  # never answers a ping
    try:
        assert isinstance(device.until(Ping), Ping)
        close = device.until(CloseConnection, timeout=10 * PING_INTERVAL + 10)
        assert close.code == 1008 and close.reason == "Ping/Pong timeout"
    finally:
        device.close()


def test_an_unmasked_frame_is_a_protocol_error_1002(op, phone):
    device = RawDevice(op, phone)
    try:
        assert json.loads(device.until(TextMessage).data)["type"] == "hello"
        payload = b'{"type": "ping"}'
        device.sock.sendall(struct.pack("!BB", 0x81, len(payload)) + payload)  # no mask bit
        assert device.until(CloseConnection).code == 1002  # RFC 6455 §5.1
    finally:
        device.close()


def test_an_abrupt_disconnect_frees_the_devices_socket_slot(op, phone):
    """Two sockets is this server's cap; one vanishes without a close frame (RST), and a new
    one is accepted once the server has noticed (at once: the default ping is 25 s away)."""
    first, second = Phone(op.issuer), Phone(op.issuer)
    for other in (first, second):
        other.key, other.device_id, other.base = phone.key, phone.device_id, phone.base
        assert other.connect()["type"] == "hello"
    raw = first.ws.sock
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # RST, no close frame
    deadline = time.monotonic() + 15
    while True:
        try:
            assert phone.connect()["type"] == "hello"
            break
        except websocket.WebSocketBadStatusException as exc:
            assert exc.status_code == 429 and time.monotonic() < deadline
            time.sleep(0.2)
    second.close()
    phone.close()


def test_a_half_sent_handshake_does_not_stop_other_devices(op, phone):
    with socket.create_connection(("127.0.0.1", op.port), timeout=30) as stalled:
        stalled.sendall(upgrade_request(op, phone).split(b"\r\n\r\n")[0][:120])
        assert phone.connect()["type"] == "hello"
        bc_authorize(op.url(), binding_message="DESPITE A STALL")
        while phone.receive_type("login_request")["request"]["binding_message"] != \
                "DESPITE A STALL":
            pass
        phone.close()
        stalled.settimeout(5)
        try:
            data = stalled.recv(4096)  # dropped by serve's read timeout; never upgraded
        except (socket.timeout, ConnectionError):
            data = b""
        assert b"101" not in data
    assert requests.get(op.url("/jwks"), timeout=10).status_code == 200


def open_descriptors(op) -> int:
    """Open descriptors of the process that holds the sockets: gunicorn's one worker, or
    ``serve`` itself."""
    pid = op.process.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return len(os.listdir(f"/proc/{children[0] if children else pid}/fd"))


def test_the_server_closes_every_socket_its_devices_leave(op, phone):
    """Under gunicorn the device short way hands its own socket to the detached WebSocket (no
    duplicate): whichever way a device leaves (a close frame, a bare hang-up, a reset), the
    server closes its socket, and none is left open behind it."""
    phone.connect()
    phone.close()
    before = open_descriptors(op)
    for _ in range(20):  # the socket just closed may take a moment to go (serve: its thread)
        time.sleep(0.05)
        before = min(before, open_descriptors(op))
    held = [Phone(op.issuer), Phone(op.issuer)]
    for other in held:
        other.key, other.device_id, other.base = phone.key, phone.device_id, phone.base
        assert other.connect()["type"] == "hello"
    assert open_descriptors(op) >= before + 2
    for other in held:
        other.close()
    for i in range(30):
        assert phone.connect()["type"] == "hello"
        if i % 3 == 0:
            phone.close()  # a close frame
        else:
            raw = phone.ws.sock
            if i % 3 == 1:  # a reset
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
            phone.ws = None
        deadline = time.monotonic() + 15
        while open_descriptors(op) > before + 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server notices the hang-up on its loop; then the slot is free
    deadline = time.monotonic() + 15
    while open_descriptors(op) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_descriptors(op) <= before


@pytest.mark.parametrize("text", ["", "a", "x" * 125, "x" * 126, "x" * 127, "é" * 63,
                                  "€" * 42, "x" * 65535, "x" * 65536, "ü" * 40000])
def test_a_text_frame_is_the_bytes_wsproto_writes_and_a_client_reads_it_whole(text):
    """ws_transport writes text frames itself (RFC 6455 §5.2: the 7-, 16- and 64-bit lengths,
    counted in UTF-8 bytes; §5.1: unmasked from a server): byte for byte wsproto's frame, and a
    client connection reads back the one whole message."""
    from wsproto.connection import Connection, ConnectionType as Kind
    from wsproto.events import Message

    from server.web.ws_transport import text_frame

    frame = text_frame(text)
    assert frame == bytes(Connection(Kind.SERVER).send(Message(data=text)))
    client = Connection(Kind.CLIENT)
    client.receive_data(frame)
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], TextMessage)
    assert events[0].data == text and events[0].message_finished
