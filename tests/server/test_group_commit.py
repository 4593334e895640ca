"""Group commit of bc-authorize's INSERTs (server/storage/group_commit.py): concurrent callers
share commits, every caller returns only when its own row is stored, and a failing row fails
only its own caller."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select

from server.storage import ciba_requests
from server.storage.models import CibaRequest


def new_row(client_id: str, user_id: str, **over) -> dict:
    row = dict(id=uuid.uuid4().hex, auth_req_id_hash=uuid.uuid4().hex * 2,
               device_request_id=uuid.uuid4().hex, client_id=client_id, user_id=user_id,
               scope="openid", delivery_mode="poll", created_at=1.0, expires_at=2e10,
               interval=5, approval_token_hash=uuid.uuid4().hex, status="pending")
    row.update(over)
    return row


def stored(provider, ids) -> int:
    with provider.db.session() as s:
        return s.scalar(select(func.count()).select_from(CibaRequest)
                        .where(CibaRequest.id.in_(list(ids))))


def run_all(calls) -> list[BaseException | None]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[BaseException | None] = [None] * len(calls)

    def one(i: int) -> None:
        barrier.wait()
        try:
            calls[i]()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcomes[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_concurrent_inserts_are_all_stored_with_fewer_commits(provider, alice, kiosk):
    rows = [new_row("kiosk", alice.id) for _ in range(40)]
    outcomes = run_all([lambda r=r: ciba_requests.insert(provider.db, **r) for r in rows])
    assert outcomes == [None] * 40
    assert stored(provider, [r["id"] for r in rows]) == 40
    group = provider.db.extras["ciba_requests.insert"]
    assert group.commits <= 40 and not group._waiting and not group._leading


def test_a_failing_row_fails_only_its_caller(provider, alice, kiosk):
    first = new_row("kiosk", alice.id)
    ciba_requests.insert(provider.db, **first)
    clash = new_row("kiosk", alice.id, auth_req_id_hash=first["auth_req_id_hash"])
    good = [new_row("kiosk", alice.id) for _ in range(10)]
    outcomes = run_all([lambda: ciba_requests.insert(provider.db, **clash)]
                       + [lambda r=r: ciba_requests.insert(provider.db, **r) for r in good])
    assert type(outcomes[0]).__name__ == "IntegrityError"  # the driver's (sqlite3, psycopg)
    assert outcomes[1:] == [None] * 10
    assert stored(provider, [r["id"] for r in good]) == 10
    assert stored(provider, [clash["id"]]) == 0


def test_a_single_failing_insert_raises(provider, alice, kiosk):
    row = new_row("kiosk", alice.id)
    ciba_requests.insert(provider.db, **row)
    with pytest.raises(Exception):
        ciba_requests.insert(provider.db, **dict(row))  # the same id again


def test_a_leader_killed_before_writing_does_not_stall_the_others(provider, alice, kiosk,
                                                                  monkeypatch):
    """A worker timeout can kill the leading request at its yield; the next ones still pass."""
    from server.storage import group_commit

    calls = []

    def killed_once():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # stands for GreenletExit / SystemExit of a killed worker

    monkeypatch.setattr(group_commit, "_pause", killed_once)
    with pytest.raises(KeyboardInterrupt):
        ciba_requests.insert(provider.db, **new_row("kiosk", alice.id))
    rows = [new_row("kiosk", alice.id) for _ in range(5)]
    assert run_all([lambda r=r: ciba_requests.insert(provider.db, **r) for r in rows]) == [None] * 5
    assert stored(provider, [r["id"] for r in rows]) == 5
