"""Per-process caches of the rows every hot path reads and that rarely change: clients by id,
users by id and by login hint, and each user's newest active device.

Entries are whole rows, detached from any session (new columns come along without change), and
are read-only for callers. They are valid while the directory version (versions.py), bumped by
every write to users, clients or devices in any process, is the one they were filled at: a
changed version empties the cache. Unknown ids and hints are cached too (an insert bumps the
version); the cache is bounded, and emptied when full.

A single user or device is read with a prepared statement on the process's read connection and
built as a transient instance (``_snapshot``): a miss through an ORM session cost about 0.5 ms
more, and a kiosk's requests are mostly misses (a different person each time, and any write to
the directory empties the cache); docs/performance.md, round 7.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from sqlalchemy import Boolean, bindparam, select
from sqlalchemy.orm.attributes import set_committed_value

from . import prepared, users, versions
from .db import Database
from .models import Client, Device, User

_MISSING = object()

# Whole rows in the tables' column order (``_snapshot``).
_USERS, _DEVICES = select(*User.__table__.columns), select(*Device.__table__.columns)
_USER_BY_ID = prepared.Prepared(_USERS.where(User.id == bindparam("id")))
_USER_BY_HINT = prepared.Prepared(_USERS.where(users.BY_HINT.whereclause).limit(1))
_USER_BY_USERNAME = prepared.Prepared(_USERS.where(User.username == bindparam("u")))
_NEWEST_DEVICE = prepared.Prepared(
    _DEVICES.where(Device.user_id == bindparam("u"), Device.revoked_at.is_(None))
    .order_by(Device.created_at.desc()).limit(1))


def _snapshot(model: type, row: tuple) -> Any:
    """A transient instance of ``model`` from a whole row in column order (no session: never
    flushed, read-only like every entry). Booleans as bool, as the ORM gives them (SQLite's
    driver returns 0 and 1)."""
    instance = model()
    for column, value in zip(model.__table__.columns, row):
        if value is not None and isinstance(column.type, Boolean):
            value = bool(value)
        set_committed_value(instance, column.key, value)  # loaded, not a pending change
    return instance


class Directory:
    def __init__(self, db: Database, max_entries: int = 50_000) -> None:
        self.db = db
        self.max_entries = max_entries
        self._lock = threading.Lock()
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

    def _read_one(self, model: type, statement: prepared.Prepared, params: dict) -> Any:
        rows = versions.read_rows(self.db, statement, params)
        return _snapshot(model, rows[0]) if rows else None

    def _load_one(self, statement) -> Any:
        with self.db.session() as s:
            row = s.scalar(statement)
            if row is not None:
                s.expunge(row)
        return row

    def client(self, client_id: str) -> Client | None:
        return self._get(("client", client_id), lambda: self._load_one(
            select(Client).where(Client.client_id == client_id)))

    def user(self, user_id: str) -> User | None:
        return self._get(("user", user_id), lambda: self._read_one(
            User, _USER_BY_ID, {"id": user_id}))

    def user_by_username_or_email(self, hint: str) -> User | None:
        """``users.by_username_or_email``, cached."""
        return self._get(("hint", hint), lambda: self._read_one(
            User, _USER_BY_HINT, users.hint_params(hint)))

    def user_by_username(self, username: str) -> User | None:
        return self._get(("username", username), lambda: self._read_one(
            User, _USER_BY_USERNAME, {"u": username}))

    def device(self, device_id: str, fresh: bool = False) -> Device | None:
        """A device by id, revoked or not (check ``revoked_at``). The first miss after a
        change loads every active device and their users at once (when they fit), so that a
        reconnect storm after a restart costs two queries, not two per device."""
        return self._get(("device_id", device_id), lambda: self._load_devices(device_id), fresh)

    def _load_devices(self, device_id: str) -> Device | None:
        """Through an ORM session: for many rows its loading beats ``_snapshot`` (10,000
        devices and their users: 300 against 620 ms)."""
        with self.db.session() as s:
            rows = list(s.scalars(select(Device).where(Device.revoked_at.is_(None))
                                  .limit(self.max_entries // 2 + 1)))
            wanted = next((r for r in rows if r.id == device_id), None) or s.scalar(
                select(Device).where(Device.id == device_id))
            fits = len(rows) <= self.max_entries // 2
            owners = list(s.scalars(select(User).where(User.id.in_(
                select(Device.user_id).where(Device.revoked_at.is_(None)))))) if fits else []
            s.expunge_all()
        if fits:
            self._fill({("device_id", r.id): r for r in rows})
            self._fill({("user", u.id): u for u in owners})  # when they fit too
        return wanted

    def _fill(self, entries: dict) -> None:
        """Add entries loaded under the current version (a loader calls this)."""
        version = versions.current(self.db)
        with self._lock:
            if self._version == version and len(self._entries) + len(entries) < self.max_entries:
                self._entries.update(entries)

    def newest_device(self, user_id: str) -> Device | None:
        """The user's newest active (unrevoked) device, or None."""
        return self._get(("device", user_id), lambda: self._read_one(
            Device, _NEWEST_DEVICE, {"u": user_id}))
