"""The notification outbox with real provider processes: a delivery survives a provider restart,
and two processes sharing one database deliver each notification once (SQLite and PostgreSQL).
The conformance testing hook stands in for the person's Accept."""

from __future__ import annotations

import base64

import pytest
import requests

from server.storage import Database
from server.storage.models import NotificationOutbox, Token
from tests.support.callback_server import CallbackServer
from tests.support.provider_process import ProviderProcess, free_port

from .test_postgres import needs_postgres, pg_schema_url  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

APPROVAL = "outbox-approval-token-93d1c0"


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def setup_push_client(op: ProviderProcess, callback: CallbackServer) -> dict:
    op.cli_json("users", "add", "alice", "--password", "alice-pw")
    client = op.cli_json("clients", "add", "till", "--delivery-mode", "push",
                         "--notification-endpoint", callback.url)
    return basic("till", client["client_secret"])


def approve_new_request(op: ProviderProcess, headers: dict) -> str:
    response = requests.post(op.url("/bc-authorize"), headers=headers, timeout=10, data={
        "scope": "openid", "login_hint": "alice", "client_notification_token": "till-token"})
    assert response.status_code == 200, response.text
    req = response.json()["auth_req_id"]
    decided = requests.post(op.url("/testing/ciba-approval"), timeout=10,
                            headers={"Authorization": f"Bearer {APPROVAL}"},
                            data={"auth_req_id": req, "action": "allow"})
    assert decided.status_code == 200, decided.text
    return req


def outbox_rows(database_url: str) -> list[NotificationOutbox]:
    db = Database(database_url)
    try:
        with db.session() as s:
            found = list(s.query(NotificationOutbox))
            tokens = s.query(Token).count()
            s.expunge_all()
    finally:
        db.dispose()
    return found, tokens


def test_a_delivery_survives_a_provider_restart(tmp_path):
    callback = CallbackServer(port=free_port())  # not listening yet: connection refused
    op = ProviderProcess(tmp_path, env={"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL}).start()
    try:
        headers = setup_push_client(op, callback)
        req = approve_new_request(op, headers)
        op.wait_for(r"push notification to .* unreachable", timeout=30)
        op.stop()
        callback.start()
        op.start()  # same instance folder, same port and issuer
        [received] = callback.wait_for(1, timeout=60)
        assert received["authorization"] == "Bearer till-token"
        assert received["body"]["auth_req_id"] == req and "access_token" in received["body"]
        url = "sqlite:///" + str(op.instance / "provider.db")
        [row], tokens = _settled(url, 1)  # the outcome is stored just after the answer
        assert row.status == "delivered" and row.attempts >= 2 and tokens == 1
    finally:
        op.stop()
        callback.stop()


def test_a_grouped_ping_decision_and_its_delivery_survive_kill_9(tmp_path):
    """The hook's approval of a ping request (the grouped decision: the outbox row on the
    unit's cursor, one commit with concurrent decisions and exchanges) is answered only once
    the decision and its notification are committed: kill -9 right after the answer loses
    neither, and the restarted provider sends the ping (CIBA §10.2) once its client listens."""
    callback = CallbackServer(port=free_port())  # not listening yet: connection refused
    op = ProviderProcess(tmp_path, env={"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL}).start()
    try:
        op.cli_json("users", "add", "alice", "--password", "alice-pw")
        client = op.cli_json("clients", "add", "till", "--delivery-mode", "ping",
                             "--notification-endpoint", callback.url)
        req = approve_new_request(op, basic("till", client["client_secret"]))
        op.process.kill()  # kill -9 right after the approval's 200
        callback.start()
        op.start()  # same instance folder, same port and issuer
        [received] = callback.wait_for(1, timeout=60)
        assert received["authorization"] == "Bearer till-token"
        assert received["body"] == {"auth_req_id": req}
        [row], _tokens = _settled("sqlite:///" + str(op.instance / "provider.db"), 1)
        assert (row.mode, row.status) == ("ping", "delivered")
        tokens = requests.post(op.url("/token"), timeout=10, headers=basic(
            "till", client["client_secret"]), data={
            "grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": req})
        assert tokens.status_code == 200 and tokens.json()["access_token"]
    finally:
        op.stop()
        callback.stop()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=[
    needs_postgres, pytest.mark.postgres])])
def test_two_processes_deliver_each_notification_once(tmp_path, request, database):
    env = {"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL}
    url = "sqlite:///" + str(tmp_path / "shared" / "provider.db")
    if database == "postgresql":
        url = request.getfixturevalue("pg_schema_url")
        env["CIBA_DATABASE_URL"] = url
    count = 4
    # Each notification meets two 503s before a 204: retries are picked up by either process.
    callback = CallbackServer(responder=lambda body, earlier: (
        (503, {"Retry-After": "1"}) if earlier < 2 else (204, {}))).start()
    port_a, port_b = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port_a}"
    a = ProviderProcess(tmp_path / "a", instance=tmp_path / "shared", port=port_a, env=env,
                        issuer=issuer, name="a").start()
    b = ProviderProcess(tmp_path / "b", instance=tmp_path / "shared", port=port_b, env=env,
                        issuer=issuer, name="b").start()
    try:
        headers = setup_push_client(a, callback)
        reqs = {approve_new_request(a if i % 2 else b, headers) for i in range(count)}
        callback.wait_for(3 * count, timeout=120)
        rows, tokens = _settled(url, count)
        assert all(r.status == "delivered" and r.attempts == 3 for r in rows)
        assert tokens == count  # tokens made once per request
        by_request: dict[str, list[bytes]] = {}
        for got in callback.received:
            by_request.setdefault(got["body"]["auth_req_id"], []).append(got["raw"])
        assert set(by_request) == reqs
        for payloads in by_request.values():
            assert len(payloads) == 3 and len(set(payloads)) == 1  # the same payload each time
        assert len(callback.received) == 3 * count  # no attempt was sent twice
    finally:
        a.stop()
        b.stop()
        callback.stop()


def _settled(url: str, count: int):
    import time

    deadline = time.monotonic() + 30
    while True:
        rows, tokens = outbox_rows(url)
        if len(rows) == count and all(r.status != "pending" for r in rows):
            return rows, tokens
        assert time.monotonic() < deadline, [(r.status, r.attempts) for r in rows]
        time.sleep(0.2)
