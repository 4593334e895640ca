"""Against a real ``ciba-provider serve``: hostile WebSocket frames, the per-device socket cap,
and half-sent requests (issue 13)."""

from __future__ import annotations

import socket
import time

import pytest
import requests
import websocket

from tests.support.provider_process import ProviderProcess

from .realworld import Phone, bc_authorize, qr_from_enroll_page, seed, signed_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    env = {"CIBA_MAX_SOCKETS_PER_DEVICE": "2", "CIBA_SERVE_READ_TIMEOUT": "2"}
    with ProviderProcess(tmp_path_factory.mktemp("limits"), env=env) as process:
        seed(process)
        yield process


@pytest.fixture
def phone(op):
    session = signed_in(op, "alice", "alice-password")
    return Phone(op.issuer).enroll(qr_from_enroll_page(session, op), "Alice's phone")


@pytest.mark.parametrize("frame, problem", [
    ("[" * 10_000, "nested deeper"),
    ('{"type": "ping", "n": NaN}', "not a JSON number"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "shout"}', "unknown message type"),
    (b"\x00\x01", "binary"),
])
def test_a_bad_frame_gets_an_error_message_and_the_socket_stays_open(op, phone, frame, problem):
    phone.connect()
    if isinstance(frame, bytes):
        phone.ws.send_binary(frame)
    else:
        phone.ws.send(frame)
    reply = phone.receive_type("error")  # pending requests of earlier cases may come first
    assert reply["error"] == "invalid_request"
    assert problem in reply["error_description"]
    phone.ws.send('{"type": "ping"}')
    assert phone.receive_type("pong") == {"type": "pong"}
    bc_authorize(op.url(), binding_message="STILL OPEN")
    while phone.receive_type("login_request")["request"]["binding_message"] != "STILL OPEN":
        pass
    phone.close()


def test_a_frame_over_16_kib_closes_the_socket_with_1009(op, phone):
    phone.connect()
    phone.ws.send("[" * 50_000)
    phone.ws.settimeout(10)
    while True:
        opcode, data = phone.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
    assert int.from_bytes(data[:2], "big") == 1009
    phone.close()


def test_a_device_holds_at_most_max_sockets_per_device(op, phone):
    first, second = Phone(op.issuer), Phone(op.issuer)
    for other in (first, second):
        other.key, other.device_id, other.base = phone.key, phone.device_id, phone.base
        assert other.connect()["type"] == "hello"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        phone.connect()
    assert refused.value.status_code == 429
    assert int(refused.value.resp_headers["retry-after"]) > 0
    first.close()
    deadline = time.monotonic() + 20
    while True:  # the server notices the close, then a new socket is accepted
        try:
            assert phone.connect()["type"] == "hello"
            break
        except websocket.WebSocketBadStatusException:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    second.close()
    phone.close()


def test_serve_drops_a_half_sent_request_and_keeps_serving(op):
    with socket.create_connection(("127.0.0.1", op.port), timeout=30) as slow:
        slow.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
        started = time.monotonic()
        slow.settimeout(30)
        data = slow.recv(4096)  # b"" when the server closes it; never waits for ever
        assert time.monotonic() - started < 30 and (data == b"" or b"408" in data)
    assert requests.get(op.url("/jwks"), timeout=10).status_code == 200
