"""SQLite WAL checkpoints on a thread of the serving process (server/storage/checkpoint.py):
the log is copied into the database file without any commit doing it, the connections keep
automatic checkpoints only as a backstop, and with the setting off SQLite's default holds."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from server import create_app
from server.config import Settings
from server.storage import checkpoint, ciba_requests
from server.storage.db import Database


def autocheckpoint(db: Database) -> int:
    connection = db.engine.raw_connection()
    try:
        return connection.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    finally:
        connection.close()


def rows(n: int) -> list[dict]:
    return [dict(id=ciba_requests.new_row_id(), auth_req_id_hash=uuid.uuid4().hex * 2,
                 device_request_id=uuid.uuid4().hex, client_id="kiosk", user_id="u1",
                 scope="openid", delivery_mode="poll", created_at=1.0, expires_at=2e10,
                 interval=5, approval_token_hash=uuid.uuid4().hex, status="pending")
            for _ in range(n)]


def test_the_thread_copies_the_log_into_the_database_file(tmp_path):
    path = tmp_path / "op.db"
    db = Database(f"sqlite:///{path}", checkpoint_thread=True)
    try:
        db.create_all()
        assert autocheckpoint(db) == checkpoint.BACKSTOP_PAGES
        with db.engine.begin() as conn:  # no foreign keys to satisfy: rows of their own
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        size = path.stat().st_size
        done = db.checkpointer.checkpoints
        connection = db.engine.raw_connection()  # one connection, as the group commit's
        try:
            driver = connection.driver_connection
            driver.execute("PRAGMA foreign_keys=OFF")
            for row in rows(300):  # a commit each: far fewer pages than the backstop
                sql, args = ciba_requests._INSERT_PREPARED.args(db.engine, {
                    c: row.get(c) for c in ciba_requests._COLUMNS})
                driver.execute(sql, args)
                driver.commit()
        finally:
            connection.close()
        deadline = time.monotonic() + 60
        while path.stat().st_size <= size or db.checkpointer.checkpoints <= done:
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            time.sleep(0.05)
        # Everything is readable from the file alone once the log is gone.
        db.dispose()
        Path(f"{path}-wal").unlink(missing_ok=True)
        check = Database(f"sqlite:///{path}")
        with check.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM ciba_requests").scalar() >= 1
        check.dispose()
    finally:
        db.dispose()


def test_without_the_setting_sqlite_checkpoints_in_the_commits(tmp_path):
    app = create_app(Settings(instance_path=str(tmp_path / "instance"), issuer="http://op.test",
                              sqlite_checkpoint_thread=False))
    db = app.extensions["ciba"].db
    assert db.checkpointer is None and autocheckpoint(db) == 1000  # SQLite's default
    db.dispose()


def test_the_serving_provider_runs_the_thread(tmp_path):
    app = create_app(Settings(instance_path=str(tmp_path / "instance"), issuer="http://op.test"))
    db = app.extensions["ciba"].db
    assert db.checkpointer is not None and autocheckpoint(db) == checkpoint.BACKSTOP_PAGES
    db.dispose()


class FailingFirst:
    """A real SQLite connection whose first ``failures`` checkpoints fail as a full disk does."""

    def __init__(self, connection, failures: int) -> None:
        self.connection = connection
        self.failures = failures

    def execute(self, sql: str):
        if sql.startswith("PRAGMA wal_checkpoint") and self.failures > 0:
            self.failures -= 1
            raise checkpoint.sqlite3.OperationalError("database or disk is full")
        return self.connection.execute(sql)

    def close(self) -> None:
        self.connection.close()


def test_a_failed_checkpoint_is_logged_and_the_thread_goes_on(tmp_path, monkeypatch, caplog):
    real_connect = checkpoint.sqlite3.connect
    monkeypatch.setattr(checkpoint, "INTERVAL", 0.01)
    monkeypatch.setattr(checkpoint.sqlite3, "connect",
                        lambda *a, **k: FailingFirst(real_connect(*a, **k), failures=3))
    path = tmp_path / "op.db"
    db = Database(f"sqlite:///{path}", checkpoint_thread=True)
    try:
        caplog.set_level("WARNING", logger="server.storage.checkpoint")
        db.create_all()
        deadline = time.monotonic() + 60
        while db.checkpointer.checkpoints < 3:  # it kept going after the failures
            assert time.monotonic() < deadline, "the thread stopped after a failed checkpoint"
            time.sleep(0.02)
        failures = [r.getMessage() for r in caplog.records
                    if r.name == "server.storage.checkpoint"]
        assert len(failures) == 3
        assert all(str(path) in m and "disk is full" in m for m in failures)
    finally:
        db.dispose()


def test_a_database_file_that_cannot_be_opened_stops_the_thread_with_a_warning(tmp_path, caplog):
    caplog.set_level("WARNING", logger="server.storage.checkpoint")
    gone = tmp_path / "gone" / "op.db"  # its folder does not exist
    owner = type("Owner", (), {})()  # the Database it would belong to (held weakly)
    checkpointer = checkpoint.Checkpointer(str(gone), owner=owner)
    checkpointer._run(lambda _s: None, 0)  # on this thread: it returns instead of looping
    assert [r.getMessage() for r in caplog.records] == [
        f"WAL checkpoints of {gone} stopped: unable to open database file"]
    assert checkpointer.checkpoints == 0
