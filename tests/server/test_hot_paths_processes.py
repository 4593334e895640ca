"""The fast paths keep their promises across real processes on 127.0.0.1:

- the CLI (another process) adds and removes users and clients while a server runs, and the
  server's caches follow at once;
- a pending request, and an approved one, survive kill -9 and a restart (durable when
  answered), and the approved one is exchanged once;
- two server processes sharing the database and Redis enforce slow_down together (CIBA §7.3,
  RFC 8628 §3.5), a pending poll writes nothing to the database, and an approved request is
  exchanged exactly once when polled concurrently on both.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest
import requests

from tests.support.provider_process import ProviderProcess

CIBA = "urn:openid:params:grant-type:ciba"
APPROVAL = "approval-token-for-tests-0123456789"

pytestmark = pytest.mark.slow


def seed(op: ProviderProcess, interval: str = "5") -> tuple[str, str]:
    op.cli("users", "add", "alice", "--password", "alice-pw")
    secret = op.cli_json("clients", "add", "kiosk", "--polling-interval", interval)
    return "kiosk", secret["client_secret"]


def bc_authorize(base: str, auth, hint: str = "alice") -> requests.Response:
    return requests.post(base + "/bc-authorize", auth=auth, timeout=30,
                         data={"scope": "openid", "login_hint": hint})


def poll(base: str, auth, auth_req_id: str) -> requests.Response:
    return requests.post(base + "/token", auth=auth, timeout=30,
                         data={"grant_type": CIBA, "auth_req_id": auth_req_id})


def approve(base: str, auth_req_id: str) -> requests.Response:
    return requests.post(base + "/testing/ciba-approval", timeout=30,
                         headers={"Authorization": "Bearer " + APPROVAL},
                         data={"auth_req_id": auth_req_id, "action": "allow"})


def error_of(response: requests.Response) -> str:
    return response.json().get("error", "") if response.status_code != 200 else ""


def test_cli_writes_reach_the_running_server_at_once(tmp_path):
    with ProviderProcess(tmp_path) as op:
        auth = seed(op)
        assert bc_authorize(op.url(), auth).status_code == 200  # kiosk and alice cached
        assert error_of(bc_authorize(op.url(), auth, "bob")) == "unknown_user_id"  # cached miss
        op.cli("users", "add", "bob", "--password", "bob-pw")
        assert bc_authorize(op.url(), auth, "bob").status_code == 200
        op.cli("clients", "remove", "kiosk")
        response = bc_authorize(op.url(), auth)
        assert response.status_code == 401 and error_of(response) == "invalid_client"


def test_answered_requests_survive_kill_9_and_a_restart(tmp_path):
    op = ProviderProcess(tmp_path, env={"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL})
    with op:
        auth = seed(op, interval="1")
        pending = bc_authorize(op.url(), auth).json()["auth_req_id"]
        approved = bc_authorize(op.url(), auth).json()["auth_req_id"]
        assert approve(op.url(), approved).status_code == 200
        op.process.kill()  # kill -9 right after the answers
    with op:
        assert error_of(poll(op.url(), auth, pending)) == "authorization_pending"
        tokens = poll(op.url(), auth, approved)
        assert tokens.status_code == 200 and tokens.json()["access_token"]
        op.process.kill()  # the exchange, its token record and audit row: committed before 200
    with op:
        introspected = requests.post(op.url() + "/introspect", auth=auth, timeout=30,
                                     data={"token": tokens.json()["access_token"]}).json()
        assert introspected["active"] is True  # its token record survived (RFC 7662 §2.2)
        assert error_of(poll(op.url(), auth, approved)) == "invalid_grant"  # used once
        op.stop()  # a plain restart too
    with op:
        assert error_of(poll(op.url(), auth, pending)) in ("authorization_pending", "slow_down")
        assert error_of(poll(op.url(), auth, approved)) == "invalid_grant"


def test_two_processes_share_slow_down_write_nothing_on_polls_and_exchange_once(
        tmp_path, redis_url):
    env = {"CIBA_REDIS_URL": redis_url, "CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL}
    first = ProviderProcess(tmp_path / "a", instance=tmp_path / "instance", env=env)
    with first, ProviderProcess(tmp_path / "b", instance=tmp_path / "instance", env=env,
                                issuer=first.issuer) as second:
        auth = seed(first)
        req = bc_authorize(first.url(), auth).json()["auth_req_id"]
        # SQLite's data_version changes when another connection commits to the file.
        watcher = sqlite3.connect(tmp_path / "instance" / "provider.db")
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        assert error_of(poll(first.url(), auth, req)) == "authorization_pending"
        # The second process knows of the first poll: too fast (interval 5 s).
        assert error_of(poll(second.url(), auth, req)) == "slow_down"
        assert error_of(poll(first.url(), auth, req)) == "slow_down"
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before, \
            "a pending poll wrote to the database"
        assert approve(second.url(), req).status_code == 200
        assert watcher.execute("PRAGMA data_version").fetchone()[0] != before  # sees writes
        watcher.close()
        results: list[requests.Response] = []
        barrier = threading.Barrier(8)

        def exchange(base: str) -> None:
            barrier.wait()
            results.append(poll(base, auth, req))

        threads = [threading.Thread(target=exchange, args=(p.url(),))
                   for p in (first, second) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(r.status_code for r in results) == [200] + [400] * 7
        assert {error_of(r) for r in results if r.status_code == 400} == {"invalid_grant"}
