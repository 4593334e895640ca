"""The per-process caches of clients, users and channel choices (storage/directory.py) never
serve a stale row: any write to users, clients or devices, from any process, through any code
path of the storage layer, bumps the directory version and empties every process's cache.

Two Provider objects on one SQLite file stand for two processes (each has its own cache); the
real-process case (the CLI writing while a server runs) is in test_hot_paths_processes.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from server.admin import ClientSpec, add_client, add_user, remove_client
from server.config import Settings
from server.wiring import build_provider
from server.security import hash_password
from server.storage import devices as device_repo, users as user_repo, versions
from server.storage.models import Client, User

from .ciba_helpers import assert_error
from .devices.helpers import DeviceKey


@pytest.fixture
def pair(tmp_path, clock):
    """Two providers (two processes) on the same instance folder."""
    settings = Settings(instance_path=str(tmp_path / "instance"), issuer="http://op.test")
    a, b = build_provider(settings, clock), build_provider(settings, clock)
    yield a, b
    a.db.dispose(), b.db.dispose()


def test_client_change_and_removal_reach_the_other_process(pair):
    a, b = pair
    add_client(b, ClientSpec(client_id="kiosk", secret="s1", name="Kiosk"))
    assert a.get_client("kiosk").name == "Kiosk"  # cached in a
    with b.db.session() as s:  # a plain ORM attribute write, as an admin page would do
        s.get(Client, "kiosk").name = "Front desk"
    assert a.get_client("kiosk").name == "Front desk"
    remove_client(b, "kiosk")
    assert a.get_client("kiosk") is None


def test_a_new_user_is_found_after_an_unknown_hint_was_cached(pair):
    a, b = pair
    assert a.find_user("bob") is None  # the miss is cached
    add_user(b, "bob", "pw", email="Bob@example.com")
    assert a.find_user("bob").username == "bob"
    assert a.find_user("bob@EXAMPLE.com").username == "bob"  # email is case-insensitive


def test_disabling_a_user_and_changing_the_password_hash_are_seen(pair):
    a, b = pair
    add_user(b, "carol", "pw")
    assert a.find_user("carol").disabled is False
    with b.db.session() as s:
        user = user_repo.by_username(s, "carol")
        user.disabled = True
        user.password_hash = new_hash = hash_password("new")
    cached = a.find_user("carol")
    assert cached.disabled is True and cached.password_hash == new_hash


def test_bulk_update_statement_bumps_the_version(pair):
    a, b = pair
    add_user(b, "dave", "pw", name="Dave")
    assert a.find_user("dave").name == "Dave"
    with b.db.session() as s:
        s.execute(update(User).where(User.username == "dave").values(name="David"))
    assert a.find_user("dave").name == "David"


def test_enrolling_and_revoking_a_device_change_the_channel_choice(pair, clock):
    a, b = pair
    user = add_user(b, "erin", "pw")
    assert a.channel_mode_for(a.find_user("erin")) == "console"
    device = DeviceKey("http://op.test")
    offer = b.devices.new_enrollment(user.id)
    device.enrolled(b.devices.enroll(device.enroll_body(offer.code), "test"))
    assert a.channel_mode_for(a.find_user("erin")) == "websocket"
    assert b.devices.revoke(device.device_id)
    assert a.channel_mode_for(a.find_user("erin")) == "console"


def test_last_seen_is_not_a_directory_change(pair, clock):
    a, b = pair
    user = add_user(b, "frank", "pw")
    offer = b.devices.new_enrollment(user.id)
    device = DeviceKey("http://op.test")
    device.enrolled(b.devices.enroll(device.enroll_body(offer.code), "test"))
    before = versions.current(a.db)
    with b.db.session() as s:
        device_repo.touch(s, device.device_id, clock.now())
    assert versions.current(a.db) == before


def test_a_request_reads_the_version_once(provider, alice, kiosk, monkeypatch):
    """Inside one request scope every cache lookup reuses the version read first."""
    reads = []
    original = versions._read

    def counting(db):
        reads.append(1)
        return original(db)

    provider.get_client("kiosk"), provider.find_user("alice")  # fill the caches
    monkeypatch.setattr(versions, "_read", counting)
    with versions.request_scope():
        provider.get_client("kiosk"), provider.find_user("alice"), provider.get_client("kiosk")
    assert len(reads) == 1
    provider.get_client("kiosk"), provider.get_client("kiosk")  # outside a scope: each time
    assert len(reads) == 3


def test_bc_authorize_sees_a_disabled_user_at_once(http, provider, alice, kiosk):
    from .ciba_helpers import auth_req_id

    auth_req_id(http, kiosk)  # alice and kiosk are cached now
    other = build_provider(provider.settings)  # another process disables her
    with other.db.session() as s:
        user_repo.by_username(s, "alice").disabled = True
    other.db.dispose()
    response = http.post("/bc-authorize", headers=kiosk.basic(),
                         data={"scope": "openid", "login_hint": "alice"})
    assert_error(response, 403, "access_denied")


def test_a_missing_version_row_is_made_by_the_first_write(pair):
    """A database whose schema came from elsewhere (a migration tool) without the row."""
    a, b = pair
    from server.storage.models import CacheVersion

    add_client(b, ClientSpec(client_id="kiosk", secret="s1", name="Kiosk"))
    with b.db.session() as s:
        s.query(CacheVersion).delete()
    assert a.get_client("kiosk").name == "Kiosk"  # cached under version 0
    with b.db.session() as s:
        s.get(Client, "kiosk").name = "Front desk"
    assert a.get_client("kiosk").name == "Front desk"


def test_sqlite_reads_the_version_on_its_own_connection_and_sees_every_commit(pair):
    """On a SQLite file each process reads the version on one connection of its own, outside
    the pool (storage/versions.py): it holds no snapshot between reads, so a commit made by
    another process is seen by the very next read, and dispose() closes it."""
    a, b = pair
    add_client(b, ClientSpec(client_id="kiosk", secret="s1", name="Kiosk"))
    first = versions.current(a.db)
    reader = a.db.extras["version_reader"]
    checked_out = a.db.engine.pool.checkedout()
    for n in range(1, 4):
        with b.db.session() as s:
            s.get(Client, "kiosk").name = f"Kiosk {n}"
        assert versions.current(a.db) == first + n
        assert a.get_client("kiosk").name == f"Kiosk {n}"
    assert a.db.extras["version_reader"] is reader  # one connection, reused
    assert a.db.engine.pool.checkedout() == checked_out  # the pool is not involved
    a.db.dispose()
    assert "version_reader" not in a.db.extras
    with pytest.raises(Exception, match="closed"):
        reader.read()


def test_each_thread_reads_on_a_connection_of_its_own(pair):
    """granian and ``serve`` answer on threads: each reads the version on its own connection
    (no waiting behind another thread's read), sees every commit, and dispose() closes all."""
    import threading

    a, b = pair
    add_client(b, ClientSpec(client_id="kiosk", secret="s1", name="Kiosk"))
    seen: dict[str, object] = {}

    def read(name: str) -> None:
        versions.current(a.db)
        seen[name] = a.db.extras["version_reader"].mine()

    threads = [threading.Thread(target=read, args=(f"t{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["t0"] is not seen["t1"]
    with b.db.session() as s:
        s.get(Client, "kiosk").name = "Front desk"
    assert a.get_client("kiosk").name == "Front desk"  # this thread's reader sees the commit
    mine = a.db.extras["version_reader"].mine()
    a.db.dispose()
    with pytest.raises(Exception, match="closed"):
        mine.read()
