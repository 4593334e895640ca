"""Pushing to connected devices (docs/device-protocol.md §5) through the bus and the hub, in one
process with stand-in sockets; the real WebSocket is tested in test_end_to_end.py."""

from __future__ import annotations

import json
import uuid

import pytest

from server.notify.bus import InProcessBus
from server.notify.hub import Hub
from server.notify.websocket import DeviceSocket
from tests.support.waiting import eventually


class FakeWs:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed = False

    def send(self, text: str) -> None:
        if self.closed:
            raise ConnectionError("closed")
        self.sent.append(json.loads(text))

    def close(self, reason=None, message=None) -> None:
        self.closed = True

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


@pytest.fixture
def connect(provider):
    """connect(device) -> FakeWs registered in the hub like an open WebSocket."""

    def do(device) -> FakeWs:
        ws = FakeWs()
        token = device.auth("GET", "/device/ws", provider.clock.now())
        user_id = provider.devices.authenticate(token, "GET", "/device/ws").user_id
        conn = DeviceSocket(ws, device.device_id, user_id)
        provider.hub.add(conn)
        conn.open([{"type": "hello", "device_id": device.device_id, "pending": 0}])
        return ws

    return do


def test_login_request_reaches_only_the_users_connected_devices(phone, enroll, alice, bob,
                                                                connect, bc_authorize):
    tablet = enroll(alice, "tablet")
    bobs = enroll(bob)
    a1, a2, b = connect(phone), connect(tablet), connect(bobs)
    bc_authorize()
    for ws in (a1, a2):
        assert ws.types() == ["hello", "login_request"]
        assert ws.sent[1]["request"]["binding_message"] == "LIB-4 7F3K"
        assert "auth_req_id" not in json.dumps(ws.sent[1])
    assert b.types() == ["hello"]


def test_other_devices_hear_request_resolved(phone, enroll, alice, connect, bc_authorize,
                                             pending_ids, decide):
    tablet = enroll(alice, "tablet")
    a1, a2 = connect(phone), connect(tablet)
    bc_authorize()
    [rid] = pending_ids(phone)
    decide(phone, rid, accept=True)
    assert a2.sent[-1] == {"type": "request_resolved", "request_id": rid, "status": "approved"}
    assert a1.sent[-1]["type"] == "request_resolved"


def test_expired_requests_are_withdrawn(phone, connect, bc_authorize, pending_ids, clock, provider):
    ws = connect(phone)
    bc_authorize()
    [rid] = pending_ids(phone)
    clock.advance(301)
    assert provider.housekeeper.tick()["expired"] == 1
    assert ws.sent[-1] == {"type": "request_resolved", "request_id": rid, "status": "expired"}
    assert provider.housekeeper.tick()["expired"] == 0


def test_only_one_process_sweeps_per_slot(phone, bc_authorize, clock, provider, settings):
    from server.devices.housekeeping import Housekeeper

    other = Housekeeper(provider, Hub())  # a second process's loop on the same database
    bc_authorize()
    clock.advance(301)
    results = [provider.housekeeper.tick()["expired"], other.tick()["expired"]]
    assert sorted(results) == [0, 1]


def test_revoke_drops_the_devices_sockets_at_once(phone, enroll, alice, connect, provider):
    tablet = enroll(alice, "tablet")
    a1, a2 = connect(phone), connect(tablet)
    provider.devices.revoke(phone.device_id)
    assert a1.sent[-1] == {"type": "device_revoked"} and a1.closed
    assert not a2.closed and a2.types() == ["hello"]
    assert len(provider.hub) == 1


def test_housekeeping_drops_devices_revoked_by_another_process(phone, connect, provider, clock):
    from server.storage import devices as device_repo

    ws = connect(phone)
    with provider.db.session() as s:  # as the CLI does without Redis: no bus message here
        device_repo.revoke(s, phone.device_id, clock.now())
    assert provider.housekeeper.tick()["dropped"] == 1
    assert ws.closed and ws.sent[-1] == {"type": "device_revoked"}


def test_events_wait_behind_the_greeting():
    ws = FakeWs()
    conn = DeviceSocket(ws, "d", "u")
    assert conn.send({"type": "login_request", "request": {}})
    conn.open([{"type": "hello"}])
    assert ws.types() == ["hello", "login_request"]


def test_a_dead_socket_is_removed_from_the_hub():
    hub, ws = Hub(), FakeWs()
    conn = DeviceSocket(ws, "d", "u")
    conn.open([])
    hub.add(conn)
    ws.closed = True
    assert hub.send_to_user("u", {"type": "x"}) == 0
    assert len(hub) == 0


def test_in_process_bus_isolates_failing_handlers():
    bus, seen = InProcessBus(), []
    bus.subscribe(lambda m: 1 / 0)
    bus.subscribe(seen.append)
    bus.publish({"kind": "send"})
    assert seen == [{"kind": "send"}]


def test_redis_bus_carries_messages_in_order_between_processes(redis_url):
    from server.notify.bus import RedisBus

    namespace = uuid.uuid4().hex
    sender, listener, heard = RedisBus(redis_url, namespace), RedisBus(redis_url, namespace), []
    listener.subscribe(heard.append)
    listener.start()
    try:
        for i in range(50):
            sender.publish({"kind": "send", "user_id": "u", "message": {"n": i}})
        assert eventually(lambda: len(heard) == 50)
        assert [m["message"]["n"] for m in heard] == list(range(50))
    finally:
        sender.close()
        listener.close()


def test_redis_bus_publishes_without_waiting_and_falls_back_to_this_process(caplog):
    pytest.importorskip("redis")
    from server.notify.bus import RedisBus

    bus, heard = RedisBus("redis://127.0.0.1:1/0", "test"), []  # nothing listens on port 1
    bus.subscribe(heard.append)
    bus.publish({"kind": "drop", "device_ids": ["d1"]})  # returns before any connection attempt
    assert eventually(lambda: heard == [{"kind": "drop", "device_ids": ["d1"]}])
    assert "Redis publish failed" in caplog.text
    bus.close()
