"""The WebSocket channel skips building a login request that no socket can receive (one process,
the in-process bus, no socket of the user open: WebSocketChannel.reaches), and a device that
connects at the same moment still gets every request: its socket enters the hub before its
pending requests are read (web/device.py DeviceSession.prepare), and a request is committed
before the channel looks. These tests run each interleaving of the two on purpose."""

from __future__ import annotations

import pytest

from server.web.device import DeviceSession

from .test_push import FakeWs


@pytest.fixture
def published(provider, monkeypatch):
    """The messages the WebSocket channel publishes on the bus."""
    seen: list[dict] = []
    publish = provider.bus.publish

    def record(message: dict) -> None:
        seen.append(message)
        publish(message)

    monkeypatch.setattr(provider.bus, "publish", record)
    return seen


@pytest.fixture
def session(provider, monkeypatch):
    """session(device) -> (DeviceSession with a stand-in socket, its FakeWs), not yet prepared."""
    monkeypatch.setattr(provider.housekeeper, "start", lambda: None)  # no background thread

    def make(device):
        token = device.auth("GET", "/device/ws", provider.clock.now())
        row = provider.devices.authenticate(token, "GET", "/device/ws")
        ws = FakeWs()
        return DeviceSession(provider, row, ws, []), ws

    return make


def login_requests(ws: FakeWs) -> list[str]:
    return [m["request"]["request_id"] for m in ws.sent if m["type"] == "login_request"]


def test_no_event_is_built_for_a_user_without_an_open_socket(phone, enroll, bob, alice,
                                                             bc_authorize, published, session,
                                                             pending_ids):
    bobs_session, bobs_ws = session(enroll(bob))
    bobs_session.prepare()
    bobs_session.conn.open(bobs_session.greeting)
    assert bc_authorize().status_code == 200  # for alice: none of her devices is connected
    assert published == [] and bobs_ws.types() == ["hello"]
    alices_session, alices_ws = session(phone)
    alices_session.prepare()
    alices_session.conn.open(alices_session.greeting)
    assert bc_authorize(binding_message="SECOND").status_code == 200
    assert [m["message"]["type"] for m in published] == ["login_request"]
    assert alices_ws.types() == ["hello", "login_request", "login_request"]
    assert alices_ws.sent[-1]["request"]["binding_message"] == "SECOND"
    assert sorted(login_requests(alices_ws)) == sorted(pending_ids(phone))


def test_a_request_made_just_before_the_socket_enters_the_hub_is_in_the_greeting(
        phone, provider, bc_authorize, published, session, pending_ids, monkeypatch):
    """The channel looks before the socket is in the hub (and builds nothing): the socket's
    pending read, which comes after it entered the hub, finds the committed request."""
    device_session, ws = session(phone)
    add = provider.hub.add

    def add_after_a_request(conn):
        monkeypatch.setattr(provider.hub, "add", add)  # once
        assert bc_authorize().status_code == 200
        add(conn)

    monkeypatch.setattr(provider.hub, "add", add_after_a_request)
    device_session.prepare()
    device_session.conn.open(device_session.greeting)
    assert published == []  # the channel skipped it: no socket of alice's yet
    [rid] = pending_ids(phone)
    assert ws.sent[0] == {"type": "hello", "device_id": phone.device_id, "pending": 1}
    assert login_requests(ws) == [rid]


def test_a_request_made_while_the_socket_reads_its_pending_requests_reaches_it(
        phone, provider, bc_authorize, published, session, pending_ids, monkeypatch):
    """The socket is in the hub: the channel sends the request (held behind the greeting)."""
    device_session, ws = session(phone)
    pending = provider.devices.pending

    def pending_after_a_request(device):
        monkeypatch.setattr(provider.devices, "pending", pending)  # once
        assert bc_authorize().status_code == 200
        return pending(device)

    monkeypatch.setattr(provider.devices, "pending", pending_after_a_request)
    device_session.prepare()
    device_session.conn.open(device_session.greeting)
    [rid] = pending_ids(phone)
    assert len(published) == 1
    assert ws.types()[0] == "hello" and rid in login_requests(ws)


def test_other_listeners_and_other_processes_still_hear_every_request(
        phone, provider, bc_authorize, published, monkeypatch):
    seen: list[dict] = []
    provider.bus.subscribe(seen.append)  # a listener that is not a hub: it must hear it
    assert bc_authorize().status_code == 200
    assert [m["message"]["type"] for m in seen] == ["login_request"]
    provider.bus.handlers.remove(seen.append)
    # A bus that crosses processes (Redis): another process may hold alice's socket.
    monkeypatch.setattr(provider.bus, "local_only", False)
    assert bc_authorize().status_code == 200
    assert len(published) == 2
