"""Per-process caches of the rows every hot path reads and that rarely change: clients by id,
users by id and by login hint, and each user's newest active device.

Entries are whole rows, detached from any session (new columns come along without change), and
are read-only for callers. They are valid while the directory version (versions.py), bumped by
every write to users, clients or devices in any process, is the one they were filled at: a
changed version empties the cache. Unknown ids and hints are cached too (an insert bumps the
version); the cache is bounded, and emptied when full.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from sqlalchemy import func, or_, select

from . import versions
from .db import Database
from .models import Client, Device, User

_MISSING = object()


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
        return self._get(("user", user_id), lambda: self._load_one(
            select(User).where(User.id == user_id)))

    def user_by_username_or_email(self, hint: str) -> User | None:
        """Same rule as ``users.by_username_or_email`` (email case-insensitive)."""
        return self._get(("hint", hint), lambda: self._load_one(select(User).where(
            or_(User.username == hint, func.lower(User.email) == hint.lower())).limit(1)))

    def user_by_username(self, username: str) -> User | None:
        return self._get(("username", username), lambda: self._load_one(
            select(User).where(User.username == username)))

    def device(self, device_id: str, fresh: bool = False) -> Device | None:
        """A device by id, revoked or not (check ``revoked_at``). The first miss after a
        change loads every active device and their users at once (when they fit), so that a
        reconnect storm after a restart costs two queries, not two per device."""
        return self._get(("device_id", device_id), lambda: self._load_devices(device_id), fresh)

    def _load_devices(self, device_id: str) -> Device | None:
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
        return self._get(("device", user_id), lambda: self._load_one(
            select(Device).where(Device.user_id == user_id, Device.revoked_at.is_(None))
            .order_by(Device.created_at.desc()).limit(1)))
