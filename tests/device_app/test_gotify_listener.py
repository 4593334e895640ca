"""GotifyListener against the spec-built fake Gotify server (real WebSocket on 127.0.0.1)."""
from __future__ import annotations

import logging
import queue

import pytest
import requests

from device_app.core.gotify_listener import GotifyListener, stream_url
from device_app.core.ws_listener import Backoff
from tests.support.gotify_server import GotifyServer

WAIT = 5  # seconds an event may take before the test fails; passing tests do not wait


@pytest.fixture
def gotify():
    with GotifyServer() as server:
        yield server


@pytest.fixture
def account(gotify):
    return gotify.add_account("alice", "wonderland")


@pytest.fixture
def received():
    return queue.Queue()


@pytest.fixture
def states():
    return queue.Queue()


@pytest.fixture
def listener(gotify, account, received, states):
    listener = GotifyListener(gotify.url, account["client"]["token"], received.put, states.put,
                              backoff=Backoff(initial=0.05, maximum=0.2))
    yield listener
    listener.stop()


def _post(gotify, account, text):
    response = requests.post(f"{gotify.url}/message", json={
        "title": "Login request", "message": text, "priority": 8,
        "extras": {"ciba::login_request": {"request_id": text}}},
        headers={"X-Gotify-Key": account["app"]["token"]})
    response.raise_for_status()


def _wait_for(states, wanted):
    while (state := states.get(timeout=WAIT)) != wanted:
        pass
    return state


def test_message_posted_with_the_app_token_arrives(gotify, account, listener, received,
                                                   states):
    listener.start()
    _wait_for(states, "connected")
    _post(gotify, account, "LIB-4 7F3K")
    message = received.get(timeout=WAIT)
    assert message["message"] == "LIB-4 7F3K"
    assert message["extras"] == {"ciba::login_request": {"request_id": "LIB-4 7F3K"}}
    assert message["appid"] == account["app"]["id"]
    (upgrade,) = gotify.requests_to("GET", "/stream")
    assert upgrade["headers"]["X-Gotify-Key"] == account["client"]["token"]
    assert upgrade["query"] == {}
    assert gotify.violations == []


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_reconnects_after_an_outage_and_the_next_message_arrives(gotify, account, listener,
                                                                 received, states, mode):
    listener.start()
    _wait_for(states, "connected")
    gotify.go_down(mode)
    _wait_for(states, "disconnected")
    assert listener.state in ("disconnected", "connecting")
    gotify.come_back()
    _wait_for(states, "connected")
    _post(gotify, account, "after the restart")
    assert received.get(timeout=WAIT)["message"] == "after the restart"
    assert len(gotify.requests_to("GET", "/stream")) >= 2
    assert gotify.violations == []


def test_states_are_reported_in_order(gotify, listener, states):
    listener.start()
    _wait_for(states, "connected")
    listener.stop()
    seen = []
    while not states.empty():
        seen.append(states.get())
    assert seen == ["disconnected"]
    assert listener.state == "disconnected"


def test_a_refused_token_waits_and_never_connects(gotify, account, received, states, caplog):
    caplog.set_level(logging.DEBUG)
    listener = GotifyListener(gotify.url, "Cwrong-token", received.put, states.put,
                              refused_retry=30)
    listener.start()
    assert _wait_for(states, "disconnected") == "disconnected"
    assert listener.last_error == "upgrade refused: HTTP 401"
    listener.stop(timeout=2)
    assert listener.state == "disconnected"
    assert len(gotify.requests_to("GET", "/stream")) == 1
    assert "Cwrong-token" not in caplog.text + repr(listener)


def test_a_failing_callback_does_not_stop_the_listener(gotify, account, states):
    delivered = queue.Queue()

    def on_message(message):
        delivered.put(message)
        raise RuntimeError("UI bug")

    listener = GotifyListener(gotify.url, account["client"]["token"], on_message, states.put)
    listener.start()
    try:
        _wait_for(states, "connected")
        _post(gotify, account, "one")
        _post(gotify, account, "two")
        assert [delivered.get(timeout=WAIT)["message"] for _ in range(2)] == ["one", "two"]
    finally:
        listener.stop()


@pytest.mark.parametrize("base, expected", [
    ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/stream"),
    ("https://push.example.com/gotify/", "wss://push.example.com/gotify/stream"),
])
def test_stream_url(base, expected):
    assert stream_url(base) == expected
