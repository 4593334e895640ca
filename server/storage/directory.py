"""Per-process caches of the rows every hot path reads and that rarely change: clients by id,
users by id and by login hint, and each user's newest active device.

Entries are whole rows, detached from any session (new columns come along without change), and
are read-only for callers. They are valid while the directory version (versions.py), bumped by
every write to users, clients or devices in any process, is the one they were filled at: a
changed version empties the cache. Unknown ids and hints are cached too (an insert bumps the
version); the cache is bounded, and emptied when full.

Users and devices are read with prepared statements on the process's read connection into
``Snapshot`` rows: named tuples of the table's columns, read-only by nature, whose attributes
cost a C tuple read instead of the ORM's instrumented one. A miss through an ORM session cost
about 0.5 ms more, and a kiosk's requests are mostly misses (a different person each time, and
any write to the directory empties the cache; docs/performance.md, round 7); a reconnect storm
loads every device and its user at once (round 8). Clients are such rows too
(``oauth.clients.RegisteredClient`` adapts one for Authlib).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

from sqlalchemy import Boolean, bindparam, select

from .. import oslocks
from . import prepared, users, versions
from .db import Database
from .models import Client, Device, User

_MISSING = object()

# Whole rows in the tables' column order (``Snapshot``).
_USERS, _DEVICES = select(*User.__table__.columns), select(*Device.__table__.columns)
_CLIENT_BY_ID = prepared.Prepared(
    select(*Client.__table__.columns).where(Client.client_id == bindparam("id")))
_USER_BY_ID = prepared.Prepared(_USERS.where(User.id == bindparam("id")))
_USER_BY_HINT = prepared.Prepared(_USERS.where(users.BY_HINT.whereclause).limit(1))
_USER_BY_USERNAME = prepared.Prepared(_USERS.where(User.username == bindparam("u")))
_DEVICE_BY_ID = prepared.Prepared(_DEVICES.where(Device.id == bindparam("id")))
#: A reconnect storm's one load: every active device (up to a limit), and their users.
_ACTIVE_DEVICES = prepared.Prepared(
    _DEVICES.where(Device.revoked_at.is_(None)).limit(bindparam("n")))
_ACTIVE_OWNERS = prepared.Prepared(_USERS.where(User.id.in_(
    select(Device.user_id).where(Device.revoked_at.is_(None)))))
_NEWEST_DEVICE = prepared.Prepared(
    _DEVICES.where(Device.user_id == bindparam("u"), Device.revoked_at.is_(None))
    .order_by(Device.created_at.desc()).limit(1))


class Snapshot:
    """Rows of one model's table as named tuples with its column names (``make``). Booleans as
    bool, as the ORM gives them (SQLite's driver returns 0 and 1)."""

    def __init__(self, model: type) -> None:
        columns = list(model.__table__.columns)
        self.type = namedtuple(model.__name__ + "Row",  # type: ignore[misc]
                               [c.key for c in columns])
        self.type.__doc__ = f"A read-only copy of a {model.__tablename__} row."
        self.booleans = [i for i, c in enumerate(columns) if isinstance(c.type, Boolean)]

    def make(self, row: tuple) -> Any:
        if self.booleans:
            row = list(row)
            for i in self.booleans:
                if row[i] is not None:
                    row[i] = bool(row[i])
        return self.type._make(row)


_USER, _DEVICE, _CLIENT = Snapshot(User), Snapshot(Device), Snapshot(Client)


class Directory:
    def __init__(self, db: Database, max_entries: int = 50_000) -> None:
        self.db = db
        self.max_entries = max_entries
        self._lock = oslocks.os_lock()  # never yields inside (server/oslocks.py)
        self._version = -1
        self._entries: dict[tuple, Any] = {}

    def _get(self, key: tuple, load: Callable[[], Any], fresh: bool = False) -> Any:
        version = versions.current(self.db, fresh)
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            value = self._entries.get(key, _MISSING)
        if value is not _MISSING:
            return value
        value = load()  # read after the version: at least as new as it
        with self._lock:
            if self._version == version:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = value
        return value

    def _read_one(self, snapshot: Snapshot, statement: prepared.Prepared, params: dict) -> Any:
        rows = versions.read_rows(self.db, statement, params)
        return snapshot.make(rows[0]) if rows else None

    def client(self, client_id: str) -> Any:
        return self._get(("client", client_id), lambda: self._read_one(
            _CLIENT, _CLIENT_BY_ID, {"id": client_id}))

    def user(self, user_id: str) -> Any:
        return self._get(("user", user_id), lambda: self._read_one(
            _USER, _USER_BY_ID, {"id": user_id}))

    def user_by_username_or_email(self, hint: str) -> Any:
        """``users.by_username_or_email``, cached."""
        return self._get(("hint", hint), lambda: self._read_one(
            _USER, _USER_BY_HINT, users.hint_params(hint)))

    def user_by_username(self, username: str) -> Any:
        return self._get(("username", username), lambda: self._read_one(
            _USER, _USER_BY_USERNAME, {"u": username}))

    def device(self, device_id: str, fresh: bool = False) -> Any:
        """A device by id, revoked or not (check ``revoked_at``). The first miss after a
        change loads every active device and their users at once (when they fit), so that a
        reconnect storm after a restart costs two queries, not two per device."""
        return self._get(("device_id", device_id), lambda: self._load_devices(device_id), fresh)

    def _load_devices(self, device_id: str) -> Any:
        """Every active device and their users as snapshots, when they fit: for 10,000 devices
        and 5,000 users this read took 58–150 ms, against 295–460 ms through an ORM session
        (docs/performance.md, round 8)."""
        limit = self.max_entries // 2
        rows = [_DEVICE.make(r) for r in versions.read_rows(
            self.db, _ACTIVE_DEVICES, {"n": limit + 1})]
        wanted = next((r for r in rows if r.id == device_id), None) \
            or self._read_one(_DEVICE, _DEVICE_BY_ID, {"id": device_id})
        if len(rows) <= limit:
            owners = [_USER.make(r) for r in versions.read_rows(self.db, _ACTIVE_OWNERS, {})]
            self._fill({("device_id", r.id): r for r in rows})
            self._fill({("user", u.id): u for u in owners})  # when they fit too
        return wanted

    def _fill(self, entries: dict) -> None:
        """Add entries loaded under the current version (a loader calls this)."""
        version = versions.current(self.db)
        with self._lock:
            if self._version == version and len(self._entries) + len(entries) < self.max_entries:
                self._entries.update(entries)

    def newest_device(self, user_id: str) -> Any:
        """The user's newest active (unrevoked) device, or None."""
        return self._get(("device", user_id), lambda: self._read_one(
            _DEVICE, _NEWEST_DEVICE, {"u": user_id}))
