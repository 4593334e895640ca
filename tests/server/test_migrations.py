"""Alembic migrations (issue 13): the revisions build exactly models.py's schema (a forgotten
migration fails here), a database of the previous release (273fe03) upgrades on SQLite and
PostgreSQL with its data working afterwards, concurrent starts migrate once, and an old schema
is refused when automatic upgrades are off."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from server import create_app
from server.config import Settings
from server.storage import ciba_requests, migrate, users
from server.storage.models import Base, CibaRequest

from .ciba_helpers import CIBA, assert_error
from .test_password_hashing import old_scrypt_hash, sign_in
from .test_postgres import needs_postgres, pg_schema_url  # noqa: F401  (fixture)

FIXTURE = Path(__file__).parent / "fixtures" / "release-273fe03"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[needs_postgres,
                                                                     pytest.mark.postgres])])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("pg_schema_url")


def test_the_revisions_build_the_schema_of_models_py(empty_url):
    """Fails when models.py changed without a revision: add one (docs/deployment.md)."""
    engine = create_engine(empty_url)
    with engine.connect() as conn:
        command.upgrade(migrate.config(conn), "head")  # the revisions, not create_all
        conn.commit()
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
        assert _directory_version(conn) == 1  # 0006 made the row the caches depend on
    engine.dispose()
    assert diff == [], f"models.py and the migrations differ; add a revision: {diff}"


def test_hot_searches_use_their_indexes_not_a_scan(empty_url):
    """compare_metadata skips expression indexes, so this checks ix_users_email_lower in a new
    database (made from models.py) here, and in an upgraded one (0008, 0009) in the upgrade
    tests; and the expiry sweep's search by ix_ciba_requests_status_expires."""
    engine = create_engine(empty_url)
    migrate.upgrade(engine)
    _assert_hot_searches_use_indexes(engine)
    engine.dispose()


def _assert_hot_searches_use_indexes(engine) -> None:
    """The lookup of a login_hint (username, or email case-insensitively) searches two indexes
    instead of reading every user; the expiry sweep, run every two seconds by each process,
    searches the pending requests by expiry instead of reading every request ever made, and so
    does the retention purge."""
    _assert_searches(engine, users.BY_HINT.params(users.hint_params("Alice@Example.org")),
                     "users", "ix_users_email_lower")
    sweep = (select(CibaRequest.id).where(CibaRequest.status == "pending",
                                         CibaRequest.expires_at <= 1e9).limit(1))
    _assert_searches(engine, sweep, "ciba_requests", "ix_ciba_requests_status_expires")
    purge = (select(CibaRequest.id).where(CibaRequest.status.in_(ciba_requests.STATUSES),
                                          CibaRequest.expires_at < 1e9).limit(500))
    _assert_searches(engine, purge, "ciba_requests", "ix_ciba_requests_status_expires")


def _assert_searches(engine, statement, table: str, index: str) -> None:
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = [row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql))]
            assert any(f"USING INDEX {index}" in step or f"USING COVERING INDEX {index}" in step
                       for step in plan), plan
            assert not any(step.startswith(f"SCAN {table}") for step in plan), plan
        else:  # a small table: tell the planner what a big one would make it do
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(row[0] for row in conn.execute(text("EXPLAIN " + sql)))
            assert index in plan and "Seq Scan" not in plan, plan


def test_a_fresh_database_is_created_and_stamped_at_head(empty_url):
    engine = create_engine(empty_url)
    assert migrate.upgrade(engine) == (None, migrate.head())
    assert migrate.upgrade(engine) == (migrate.head(), migrate.head())
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert _directory_version(conn) == 1  # create_all + stamp: made by migrate.upgrade
    engine.dispose()


def _directory_version(conn) -> int:
    """The row of server/storage/versions.py (issue 9's caches)."""
    return conn.execute(text("SELECT version FROM cache_versions WHERE name = 'directory'")
                        ).scalar_one()


def _client_basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _works_after_upgrade(app) -> None:
    """What an operator expects of the upgraded instance: old passwords, secrets and rows."""
    http = app.test_client()
    assert sign_in(http, "alice", "alice-old-password").status_code == 302
    form = {"grant_type": CIBA, "auth_req_id": "unknown"}
    assert_error(http.post("/token", data=form, headers=_client_basic("kiosk", "kiosk-old-secret")),
                 400, "invalid_grant")  # authenticated, then the grant fails
    r = http.post("/bc-authorize", headers=_client_basic("kiosk", "kiosk-old-secret"),
                  data={"scope": "openid", "login_hint": "alice", "binding_message": "UPGRADED"})
    assert r.status_code == 200, r.get_json()
    engine = app.extensions["ciba"].db.engine
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        columns = {c["name"] for c in inspect(conn).get_columns("clients")}
        assert {"client_uri", "logo_uri"} <= columns
        assert conn.execute(text("SELECT password_hash FROM users")).scalar_one() \
            .startswith("$argon2id$")
        assert _directory_version(conn) >= 1
    _assert_hot_searches_use_indexes(engine)


def test_the_previous_release_sqlite_instance_upgrades(tmp_path):
    instance = tmp_path / "instance"
    shutil.copytree(FIXTURE, instance)
    with create_engine(f"sqlite:///{instance / 'provider.db'}").connect() as conn:
        assert migrate.current(conn) is None
        assert "client_uri" not in {c["name"] for c in inspect(conn).get_columns("clients")}
    app = create_app(Settings(instance_path=str(instance), issuer="http://op.test"))
    _works_after_upgrade(app)
    devices = app.extensions["ciba"].devices.devices_of(_alice_id(app))
    assert [d.display_name for d in devices] == ["Old phone"]


def _alice_id(app) -> str:
    from server.storage import users

    with app.extensions["ciba"].db.session() as s:
        return users.by_username(s, "alice").id


@needs_postgres
@pytest.mark.postgres
def test_a_previous_release_postgresql_database_upgrades(pg_schema_url, tmp_path):  # noqa: F811
    from .fixtures import release_273fe03_models as old

    engine = create_engine(pg_schema_url)
    old.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        # an even older database: before users.is_admin, with devices.totp_secret varchar(64)
        conn.execute(text("ALTER TABLE users DROP COLUMN is_admin"))
        conn.execute(text("ALTER TABLE devices ALTER COLUMN totp_secret TYPE varchar(64)"))
        conn.execute(text(
            "INSERT INTO users (id, username, email, name, password_hash, notification_mode, "
            "disabled, created_at) VALUES ('u1', 'alice', 'alice@example.com', 'Alice', :pw, "
            "'', false, 0)"), {"pw": old_scrypt_hash("alice-old-password")})
        conn.execute(text(
            "INSERT INTO clients (client_id, name, secret_hash, auth_method, grant_types, scope, "
            "delivery_mode, user_code_required, created_at) VALUES ('kiosk', 'Kiosk', :h, "
            "'client_secret_basic', :g, 'openid', 'poll', false, 0)"),
            {"h": old_scrypt_hash("kiosk-old-secret"), "g": CIBA + " refresh_token"})
    engine.dispose()
    app = create_app(Settings(instance_path=str(tmp_path / "i"), issuer="http://op.test",
                              database_url=pg_schema_url))
    _works_after_upgrade(app)
    with app.extensions["ciba"].db.engine.connect() as conn:
        columns = {c["name"]: c for c in inspect(conn).get_columns("devices")}
        assert columns["totp_secret"]["type"].length == 128  # widened
        assert conn.execute(text("SELECT is_admin FROM users")).scalar_one() is False


def test_several_processes_upgrading_at_once_migrate_once(empty_url, tmp_path):
    argv = [sys.executable, "-m", "server.cli", "db", "upgrade", "--instance", str(tmp_path / "i")]
    env = {"CIBA_DATABASE_URL": empty_url, "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert sum("upgraded from none" in o for o in outputs) == 1, outputs
    assert sum("already at revision" in o for o in outputs) == 3, outputs


def test_an_old_schema_is_refused_when_automatic_upgrades_are_off(tmp_path):
    instance = tmp_path / "instance"
    shutil.copytree(FIXTURE, instance)
    with pytest.raises(migrate.SchemaOutdated, match="ciba-provider db upgrade"):
        create_app(Settings(instance_path=str(instance), issuer="http://op.test",
                            db_auto_upgrade=False))
    done = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--no-upgrade",
                           "--port", "0", "--instance", str(instance)], cwd=ROOT, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 2 and "ciba-provider db upgrade" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "server.cli", "db", "upgrade", "--instance",
                           str(instance)], cwd=ROOT, text=True, capture_output=True, timeout=60)
    assert done.returncode == 0 and f"upgraded from none to {migrate.head()}" in done.stdout
    create_app(Settings(instance_path=str(instance), issuer="http://op.test",
                        db_auto_upgrade=False))
