"""Group commit of bc-authorize's INSERTs and of token exchanges (server/storage/group_commit.py):
concurrent callers share commits, every caller returns only when its own row is stored, and a
failing row (or unit of work) fails only its own caller; and the prepared counts of the pending caps (issue 13). On SQLite, and on
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


# Units of work (group_commit.Units): the token exchange's single-use UPDATE with its INSERTs.

def approved(provider, alice_id: str, n: int) -> list[str]:
    rows = [new_row("kiosk", alice_id, status="approved") for _ in range(n)]
    for row in rows:
        ciba_requests.insert(provider.db, **row)
    return [row["id"] for row in rows]


def exchange_of(provider, request_id: str, caller: int):
    """The exchange of ``request_id`` with one audit row naming ``caller`` (a token record
    stands in as an audit row: what matters is what a loser leaves behind)."""
    from server import audit
    from server.storage import audit as audit_repo

    row = audit.values("token_issued", f"client:caller-{caller}", 1.0, client_id="kiosk",
                       grant=request_id)
    return lambda: ciba_requests.exchange(provider.db, request_id, (audit_repo.INSERT, row))


def audit_rows(provider) -> list[str]:
    from server.storage.models import AuditEvent

    with provider.db.session() as s:
        return list(s.scalars(select(AuditEvent.detail).where(
            AuditEvent.event == "token_issued")))


def one_batch(monkeypatch, provider, size: int, name: str = ciba_requests.UNITS) -> None:
    """The next leader waits (generously) until ``size`` callers are queued: one batch."""
    from server.storage import group_commit

    group = provider.db.extras.setdefault(name, group_commit.Units(provider.db.engine))
    ready = threading.Event()

    def gather() -> None:
        for _ in range(6000):
            if len(group._waiting) >= size:
                break
            ready.wait(0.01)

    monkeypatch.setattr(group_commit, "_pause", gather)


def test_exchanges_in_one_batch_each_request_exchanged_once(on_db, monkeypatch):
    """CIBA §11: of four concurrent exchanges of each of five approved requests, all in one
    transaction, exactly one per request wins; the losers get False and wrote nothing."""
    provider, alice_id = on_db
    ids = approved(provider, alice_id, 5)
    one_batch(monkeypatch, provider, 20)
    results: list = [None] * 20

    def call(i: int):
        return lambda: results.__setitem__(i, exchange_of(provider, ids[i % 5], i)())

    assert run_all([call(i) for i in range(20)]) == [None] * 20
    for k, request_id in enumerate(ids):
        assert [results[i] for i in range(k, 20, 5)].count(True) == 1
    assert results.count(False) == 15
    assert provider.db.extras[ciba_requests.UNITS].commits == 1
    assert len(audit_rows(provider)) == 5
    assert sorted(r.split('"grant":"')[1][:32] for r in audit_rows(provider)) == sorted(ids)
    assert all(ciba_requests.find_by_hash(provider.db, h).status == "exchanged"
               for h in _hashes(provider, ids))


def _hashes(provider, ids) -> list[str]:
    with provider.db.session() as s:
        return list(s.scalars(select(CibaRequest.auth_req_id_hash).where(
            CibaRequest.id.in_(ids))))


def test_a_failing_unit_fails_only_its_caller(on_db, monkeypatch):
    """A unit that fails in a batch: the batch is rolled back and each unit runs alone, so the
    others are exchanged once each and the failing caller's request is left as it was."""
    provider, alice_id = on_db
    ids = approved(provider, alice_id, 4)
    one_batch(monkeypatch, provider, 4)
    group = provider.db.extras[ciba_requests.UNITS]
    results: list = [None] * 4

    def failing(cursor):
        # An UPDATE as the exchange's, then a failure after it: the batch must roll it back.
        cursor.execute("UPDATE ciba_requests SET status = 'exchanged' WHERE id = '%s'" % ids[0])
        raise RuntimeError("a bug after the UPDATE")

    calls = [lambda: group.run(failing)] + [
        (lambda i=i: results.__setitem__(i, exchange_of(provider, ids[i], i)())) for i in (1, 2, 3)]
    outcomes = run_all(calls)
    assert isinstance(outcomes[0], RuntimeError) and outcomes[1:] == [None] * 3
    assert results[1:] == [True] * 3 and len(audit_rows(provider)) == 3
    statuses = {h: ciba_requests.find_by_hash(provider.db, h) for h in _hashes(provider, ids)}
    assert sorted(r.status for r in statuses.values()) == ["approved"] + ["exchanged"] * 3
    assert next(r for r in statuses.values() if r.status == "approved").id == ids[0]


def test_poll_decisions_in_one_batch_each_request_decided_once(on_db, monkeypatch):
    """Decisions of poll requests through ``decisions.decide``, grouped: of two concurrent
    decisions of each request (one approval, one denial) in one transaction exactly one wins,
    the other hears already_decided and records nothing; each audit record has its own
    caller's address (the units run on the leader's thread)."""
    from server import audit
    from server.oauth.decisions import Outcome, decide
    from server.storage.models import AuditEvent

    provider, alice_id = on_db
    rows = [new_row("kiosk", alice_id) for _ in range(4)]
    for row in rows:
        ciba_requests.insert(provider.db, **row)
    one_batch(monkeypatch, provider, 8)
    outcomes: list = [None] * 8

    def call(i: int):
        def decision() -> None:
            audit.bind_address(f"192.0.2.{i}")
            outcomes[i] = decide(provider, rows[i % 4]["id"], i < 4, f"caller:{i}", "poll")
        return decision

    assert run_all([call(i) for i in range(8)]) == [None] * 8
    assert provider.db.extras[ciba_requests.UNITS].commits == 1
    for k in range(4):
        pair = sorted([outcomes[k], outcomes[k + 4]], key=str)
        assert Outcome.ALREADY_DECIDED in pair and pair.count(Outcome.ALREADY_DECIDED) == 1
    with provider.db.session() as s:
        events = s.execute(select(AuditEvent.actor, AuditEvent.address, AuditEvent.event).where(
            AuditEvent.event.in_(["request_approved", "request_denied"]))).all()
    assert len(events) == 4
    assert all(address == "192.0.2." + actor.split(":")[1] for actor, address, _ in events)
    for actor, _address, event in events:
        i = int(actor.split(":")[1])
        assert outcomes[i] in (Outcome.APPROVED, Outcome.DENIED)
        assert event == f"request_{outcomes[i].value}"


def test_units_on_sqlite_write_on_a_connection_of_their_own(on_db, monkeypatch):
    """On a SQLite file the units' batches run on one connection of the group's own (no pool
    checkout per batch); a batch whose commit fails is rolled back on it and the next unit
    commits; after a fork the child makes its own (a connection must not cross one). On
    PostgreSQL the pool serves each batch."""
    import os

    from server.storage import group_commit

    provider, alice_id = on_db
    ids = approved(provider, alice_id, 3)
    group = provider.db.extras.setdefault(ciba_requests.UNITS,
                                          group_commit.Units(provider.db.engine))
    assert exchange_of(provider, ids[0], 0)()
    if provider.db.engine.dialect.name != "sqlite":
        assert group._own is None
        return
    own = group._own._connection
    assert own is not None
    pool = provider.db.engine.pool
    checked_out = pool.checkedout()
    assert exchange_of(provider, ids[1], 1)()
    assert group._own._connection is own and pool.checkedout() == checked_out

    def fails(cursor):
        cursor.execute("UPDATE ciba_requests SET status = 'exchanged' WHERE id = ?", (ids[2],))
        raise RuntimeError("after the UPDATE")

    with pytest.raises(RuntimeError):
        group.run(fails)
    assert [r.status for r in map(lambda h: ciba_requests.find_by_hash(provider.db, h),
                                  _hashes(provider, [ids[2]]))] == ["approved"]
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as in a forked child
    assert exchange_of(provider, ids[2], 2)()
    assert group._own._connection is not own
    own.close()  # the "parent's": abandoned by the child, closed here by the test
    assert len(audit_rows(provider)) == 3
