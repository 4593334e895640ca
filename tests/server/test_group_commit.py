"""Group commit of bc-authorize's INSERTs (server/storage/group_commit.py): concurrent callers
share commits, every caller returns only when its own row is stored, and a failing row fails
only its own caller; and the prepared counts of the pending caps (issue 13). On SQLite, and on
a PostgreSQL schema built by the Alembic revisions (its own search_path), where the prepared
statements run on raw driver connections."""

from __future__ import annotations

import threading
import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select

from server import create_app
from server.admin import ClientSpec, add_client, add_user
from server.config import Settings
from server.storage import ciba_requests, migrate
from server.storage.models import CibaRequest

from .test_postgres import needs_postgres, pg_schema_url  # noqa: F401  (fixture)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[needs_postgres,
                                                                     pytest.mark.postgres])])
def on_db(request, tmp_path, clock):
    """(provider, alice's id), with alice and the client kiosk stored."""
    url = ""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_schema_url")
        engine = create_engine(url)
        with engine.connect() as conn:  # the revisions, not create_all
            command.upgrade(migrate.config(conn), "head")
            conn.commit()
        engine.dispose()
    app = create_app(Settings(instance_path=str(tmp_path / "instance"), issuer="http://op.test",
                              database_url=url), clock=clock)
    provider = app.extensions["ciba"]
    alice = add_user(provider, "alice", "alice-password")
    add_client(provider, ClientSpec(client_id="kiosk"))
    yield provider, alice.id
    provider.db.dispose()


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


def test_concurrent_inserts_are_all_stored_with_fewer_commits(on_db):
    provider, alice_id = on_db
    rows = [new_row("kiosk", alice_id) for _ in range(40)]
    outcomes = run_all([lambda r=r: ciba_requests.insert(provider.db, **r) for r in rows])
    assert outcomes == [None] * 40
    assert stored(provider, [r["id"] for r in rows]) == 40
    group = provider.db.extras["ciba_requests.insert"]
    assert group.commits <= 40 and not group._waiting and not group._leading


def test_a_failing_row_fails_only_its_caller(on_db):
    provider, alice_id = on_db
    first = new_row("kiosk", alice_id)
    ciba_requests.insert(provider.db, **first)
    clash = new_row("kiosk", alice_id, auth_req_id_hash=first["auth_req_id_hash"])
    good = [new_row("kiosk", alice_id) for _ in range(10)]
    outcomes = run_all([lambda: ciba_requests.insert(provider.db, **clash)]
                       + [lambda r=r: ciba_requests.insert(provider.db, **r) for r in good])
    # the driver's IntegrityError (sqlite3; psycopg raises its subclass UniqueViolation)
    assert "IntegrityError" in {c.__name__ for c in type(outcomes[0]).__mro__}
    assert outcomes[1:] == [None] * 10
    assert stored(provider, [r["id"] for r in good]) == 10
    assert stored(provider, [clash["id"]]) == 0


def test_a_single_failing_insert_raises(on_db):
    provider, alice_id = on_db
    row = new_row("kiosk", alice_id)
    ciba_requests.insert(provider.db, **row)
    with pytest.raises(Exception):
        ciba_requests.insert(provider.db, **dict(row))  # the same id again


def test_a_leader_killed_before_writing_does_not_stall_the_others(on_db, monkeypatch):
    """A worker timeout can kill the leading request at its yield; the next ones still pass."""
    provider, alice_id = on_db
    from server.storage import group_commit

    calls = []

    def killed_once():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # stands for GreenletExit / SystemExit of a killed worker

    monkeypatch.setattr(group_commit, "_pause", killed_once)
    with pytest.raises(KeyboardInterrupt):
        ciba_requests.insert(provider.db, **new_row("kiosk", alice_id))
    rows = [new_row("kiosk", alice_id) for _ in range(5)]
    assert run_all([lambda r=r: ciba_requests.insert(provider.db, **r) for r in rows]) == [None] * 5
    assert stored(provider, [r["id"] for r in rows]) == 5


def test_pending_counts_for_the_caps(on_db, clock):
    """Two prepared reads per bc-authorize (limits.py): a user's or a client's pending,
    unexpired requests and the soonest expiry; decided and expired ones do not count."""
    provider, alice_id = on_db
    now = clock.now()
    for expires in (now + 30, now + 60, now - 1):
        ciba_requests.insert(provider.db, **new_row("kiosk", alice_id, expires_at=expires))
    ciba_requests.insert(provider.db, **new_row("kiosk", alice_id, status="denied"))
    assert ciba_requests.pending_count(provider.db, now, user_id=alice_id) == (2, now + 30)
    assert ciba_requests.pending_count(provider.db, now, client_id="kiosk") == (2, now + 30)
    assert ciba_requests.pending_count(provider.db, now) == (2, now + 30)
    assert ciba_requests.pending_count(provider.db, now, user_id="nobody") == (0, None)
