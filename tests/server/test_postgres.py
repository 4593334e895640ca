"""The poll-mode flow on each supported database: SQLite (always) and a real PostgreSQL server
(when CIBA_TEST_POSTGRES_URL is set, e.g. postgresql+psycopg://ciba:ciba@127.0.0.1:5432/ciba).

Each PostgreSQL test gets its own schema (dropped afterwards), so runs can share one database.
"""

from __future__ import annotations

import os
import threading
import uuid
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import create_engine, text

from server import create_app
from server.admin import ClientSpec, add_client, add_user
from server.config import Settings
from server.storage import replay

from tests.support.provider_process import ProviderProcess

from .ciba_helpers import CIBA, assert_error, auth_req_id, decide_request, poll

POSTGRES_URL = os.environ.get("CIBA_TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="CIBA_TEST_POSTGRES_URL is not set: no PostgreSQL server to test on")


@pytest.fixture
def pg_schema_url():
    """A database URL whose connections use a fresh schema of their own."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options={quote('-csearch_path=' + schema)}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[needs_postgres,
                                                                     pytest.mark.postgres])])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return ""  # the default: sqlite in the instance folder
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def db_app(database_url, tmp_path, clock):
    app = create_app(Settings(instance_path=str(tmp_path / "instance"), issuer="http://op.test",
                              database_url=database_url), clock=clock)
    provider = app.extensions["ciba"]
    if database_url:
        assert provider.db.engine.dialect.name == "postgresql"
    yield app
    provider.db.dispose()


@pytest.fixture
def setup(db_app):
    from tests.conftest import ClientCreds
    provider = db_app.extensions["ciba"]
    add_user(provider, "alice", "alice-password", email="alice@example.com")
    metadata, secret = add_client(provider, ClientSpec(client_id="kiosk"))
    return db_app.test_client(), provider, ClientCreds("kiosk", secret, metadata)


def test_poll_flow(setup, clock):
    http, provider, kiosk = setup
    req = auth_req_id(http, kiosk, scope="openid email offline_access", binding_message="W4SCT")
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    clock.advance(1)
    assert_error(poll(http, kiosk, req), 400, "slow_down")
    clock.advance(10)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    decide_request(provider, req)
    clock.advance(10)
    tokens = poll(http, kiosk, req)
    assert tokens.status_code == 200, tokens.json
    body = tokens.json
    userinfo = http.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert userinfo.json["email"] == "alice@example.com"

    refreshed = http.post("/token", headers=kiosk.basic(), data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.json
    # replaying the exchanged auth_req_id revokes the whole grant, refreshed tokens included
    assert_error(poll(http, kiosk, req), 400, "invalid_grant")
    for token in (body["access_token"], refreshed.json["access_token"],
                  refreshed.json["refresh_token"]):
        response = http.post("/introspect", headers=kiosk.basic(), data={"token": token})
        assert response.json == {"active": False}


def test_deny_and_expiry(setup, clock):
    http, provider, kiosk = setup
    denied = auth_req_id(http, kiosk)
    decide_request(provider, denied, approve=False)
    assert_error(poll(http, kiosk, denied), 400, "access_denied")
    expiring = auth_req_id(http, kiosk, requested_expiry="30")
    clock.advance(31)
    assert_error(poll(http, kiosk, expiring), 400, "expired_token")


def test_concurrent_exchange_gives_tokens_once(setup):
    http, provider, kiosk = setup
    req = auth_req_id(http, kiosk)
    decide_request(provider, req)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def exchange():
        barrier.wait()
        results.append(poll(http, kiosk, req).status_code)

    threads = [threading.Thread(target=exchange) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [200, 400, 400, 400]
    # One token record and one token_issued audit row: the losers wrote nothing.
    from server.storage.models import AuditEvent, CibaRequest, Token
    with provider.db.session() as s:
        request_id = s.query(CibaRequest.id).one()[0]
        assert s.query(Token).filter_by(grant_id=request_id).count() == 1
        assert s.query(AuditEvent).filter_by(event="token_issued").count() == 1


def test_single_use_markers(db_app, clock):
    provider = db_app.extensions["ciba"]
    now = clock.now()
    with provider.db.session() as s:
        assert replay.use_once(s, "jti:a", now + 60, now) is True
    with provider.db.session() as s:
        assert replay.use_once(s, "jti:a", now + 60, now) is False
        assert replay.use_once(s, "jti:b", now + 60, now) is True
    with provider.db.session() as s:  # reusable once it has expired
        assert replay.use_once(s, "jti:a", now + 200, now + 61) is True


def test_grouped_single_use_markers_under_concurrency(db_app, clock):
    """Device connects record their jti through the group commit: of many concurrent uses of
    one key exactly one wins, distinct keys all win, and an expired key is reusable once."""
    import threading

    provider = db_app.extensions["ciba"]
    now = clock.now()
    results: list[tuple[str, bool]] = []

    def use(key: str) -> None:
        results.append((key, replay.use_once_grouped(provider.db, key, now + 60, now)))

    threads = [threading.Thread(target=use, args=(key,))
               for key in ["jti:same"] * 8 + [f"jti:{i}" for i in range(8)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(ok for key, ok in results if key == "jti:same") == [False] * 7 + [True]
    assert all(ok for key, ok in results if key != "jti:same") and len(results) == 16
    assert replay.use_once_grouped(provider.db, "jti:same", now + 200, now + 61) is True
    assert replay.use_once_grouped(provider.db, "jti:same", now + 200, now + 61) is False


@needs_postgres
@pytest.mark.postgres
@pytest.mark.slow
def test_server_process_on_postgres(pg_schema_url, tmp_path):
    server = ProviderProcess(tmp_path, env={"CIBA_DATABASE_URL": pg_schema_url,
                                           "CIBA_AUTOMATED_APPROVAL_TOKEN": "t0k"})
    server.start()
    try:
        server.cli("users", "add", "alice", "--password", "pw")
        secret = server.cli_json("clients", "add", "kiosk")["client_secret"]
        assert not (tmp_path / "instance" / "provider.db").exists()
        started = requests.post(server.issuer + "/bc-authorize", auth=("kiosk", secret),
                                data={"scope": "openid", "login_hint": "alice"}, timeout=10)
        assert started.status_code == 200, started.text
        auth_req = started.json()["auth_req_id"]
        approved = requests.post(server.issuer + "/testing/ciba-approval", timeout=10,
                                 headers={"Authorization": "Bearer t0k"},
                                 data={"auth_req_id": auth_req, "action": "allow"})
        assert approved.status_code == 200, approved.text
        tokens = requests.post(server.issuer + "/token", auth=("kiosk", secret), timeout=10,
                               data={"grant_type": CIBA, "auth_req_id": auth_req})
        assert tokens.status_code == 200, tokens.text
        assert "id_token" in tokens.json()
    finally:
        server.stop()


def test_directory_rows_on_each_database(db_app, clock, monkeypatch):
    """The directory's users and devices (storage/directory.py) are prepared reads into
    read-only rows, on each database: the values the ORM gives (booleans as bool), no cached row
    changed by mistake, and one read of every active device for a reconnect storm."""
    from server.storage import versions

    from .devices.helpers import DeviceKey

    provider = db_app.extensions["ciba"]
    user = add_user(provider, "dora", "pw", email="Dora@Example.com")
    keys = []
    for _ in range(3):
        key = DeviceKey("http://op.test")
        offer = provider.devices.new_enrollment(user.id)
        keys.append(key.enrolled(provider.devices.enroll(key.enroll_body(offer.code), "test")))
        clock.advance(1)
    reads = []
    real_read_rows = versions.read_rows
    monkeypatch.setattr(versions, "read_rows", lambda *a: reads.append(a) or real_read_rows(*a))
    devices = [provider.devices.authenticate(k.auth("GET", "/device/ws", clock.now()), "GET",
                                             "/device/ws") for k in keys]
    assert [d.id for d in devices] == [k.device_id for k in keys]
    assert all(d.user_id == user.id and d.revoked_at is None and d.push_channel == "websocket"
               for d in devices)
    assert len(reads) == 2  # every active device, then their users: once for all three
    found = provider.directory.user_by_username_or_email("dora@example.com")
    assert (found.id, found.username, found.email) == (user.id, "dora", "Dora@Example.com")
    assert found.disabled is False and found.is_admin is False
    with pytest.raises(AttributeError):
        found.disabled = True
    assert provider.directory.newest_device(user.id).id == keys[-1].device_id


@needs_postgres
@pytest.mark.postgres
def test_concurrent_requests_share_the_pool_without_opening_more(pg_schema_url, tmp_path):
    """Fifty concurrent readers on PostgreSQL open at most the pool's connections and wait for
    one when all are busy: connections opened and closed around single requests (the pool's
    overflow) were most of a request's cost under load (docs/performance.md, round 8)."""
    from sqlalchemy import event

    from server.storage import db as db_module, versions
    from server.storage.db import Database

    database = Database(pg_schema_url)
    database.create_all()
    opened = []
    event.listen(database.engine, "connect", lambda *_: opened.append(1))
    barrier = threading.Barrier(50)
    errors = []

    def reader() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                versions.current(database, fresh=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    database.dispose()
    assert not errors
    assert 0 < len(opened) <= db_module.POOL_SIZE


def test_old_requests_are_purged_with_their_outbox_rows(setup, clock):
    """The retention purge (server/oauth/retention.py) on each database: ON DELETE CASCADE takes
    the request's notification with it."""
    from server.oauth import retention
    from server.storage.models import CibaRequest, NotificationOutbox
    from tests.conftest import ClientCreds

    http, provider, kiosk = setup
    provider.outbox.stop()
    metadata, secret = add_client(provider, ClientSpec(
        client_id="teller", delivery_mode="ping", notification_endpoint="http://127.0.0.1:9/cb"))
    teller = ClientCreds("teller", secret, metadata)
    pinged = auth_req_id(http, teller, client_notification_token="ping-token-123")
    decide_request(provider, pinged)
    polled = auth_req_id(http, kiosk)
    clock.advance(31 * 86400)
    kept = auth_req_id(http, kiosk)
    assert retention.purge_some(provider) == 2
    with provider.db.session() as s:
        assert s.query(NotificationOutbox).count() == 0
        assert s.query(CibaRequest).count() == 1
    assert_error(poll(http, kiosk, polled), 400, "invalid_grant")
    assert_error(poll(http, kiosk, kept), 400, "authorization_pending")
