"""Expiry is noticed by every serving process, with no device connected: a real provider process
marks an expired request "expired" and tells a push client (CIBA §12: error expired_token at its
notification endpoint) and a ping client (a ping, then expired_token at the token endpoint).
Before, only a process that had accepted a device WebSocket swept expired requests."""

from __future__ import annotations

import sqlite3
import time

import pytest
import requests

from tests.support.callback_server import CallbackServer
from tests.support.provider_process import ProviderProcess

from .test_outbox_processes import basic

pytestmark = pytest.mark.slow

CIBA = "urn:openid:params:grant-type:ciba"


def start_request(op: ProviderProcess, headers: dict, token: str) -> str:
    r = requests.post(op.url("/bc-authorize"), headers=headers, timeout=30, data={
        "scope": "openid", "login_hint": "alice", "client_notification_token": token,
        "requested_expiry": "2"})
    assert r.status_code == 200, r.text
    return r.json()["auth_req_id"]


def statuses(op: ProviderProcess) -> list[str]:
    with sqlite3.connect(op.instance / "provider.db") as conn:
        return [row[0] for row in conn.execute("SELECT status FROM ciba_requests")]


def test_expired_requests_are_announced_without_devices(tmp_path):
    with CallbackServer() as push_endpoint, CallbackServer() as ping_endpoint, \
            ProviderProcess(tmp_path) as op:
        op.cli("users", "add", "alice", "--password", "alice-pw")
        till = op.cli_json("clients", "add", "till", "--delivery-mode", "push",
                           "--notification-endpoint", push_endpoint.url)
        desk = op.cli_json("clients", "add", "desk", "--delivery-mode", "ping",
                           "--notification-endpoint", ping_endpoint.url)
        pushed = start_request(op, basic("till", till["client_secret"]), "till-token")
        pinged = start_request(op, basic("desk", desk["client_secret"]), "desk-token")

        [push] = push_endpoint.wait_for(1, timeout=60)
        assert push["authorization"] == "Bearer till-token"
        assert push["body"] == {"auth_req_id": pushed, "error": "expired_token",
                                "error_description": "The authentication request has expired"}
        [ping] = ping_endpoint.wait_for(1, timeout=60)
        assert ping["authorization"] == "Bearer desk-token"
        assert ping["body"] == {"auth_req_id": pinged}
        r = requests.post(op.url("/token"), headers=basic("desk", desk["client_secret"]),
                          data={"grant_type": CIBA, "auth_req_id": pinged}, timeout=30)
        assert r.status_code == 400 and r.json()["error"] == "expired_token"

        deadline = time.monotonic() + 30
        while statuses(op) != ["expired", "expired"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert statuses(op) == ["expired", "expired"]
