"""When each device was last seen: device calls are frequent (a reconnect storm after a restart
is one call per device at once), and last_seen_at is only shown to people, to the minute."""

from __future__ import annotations

from .. import oslocks



class LastSeen:
    """Batches the last_seen_at writes of device calls: at most one per device per minute (it
    is shown to people, to the minute), written together once ``BATCH`` are waiting or the
    oldest has waited ``HOLD`` seconds, so a reconnect storm does not write once per device."""

    EVERY, HOLD, BATCH = 60.0, 5.0, 500

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = oslocks.os_lock()  # never yields inside (server/oslocks.py)
        self._written: dict[str, float] = {}
        self._waiting: dict[str, float] = {}
        self._since = 0.0
        self.max_entries = max_entries

    def note(self, device_id: str, now: float) -> dict[str, float]:
        """Record a call; returns the batch to write now (often empty)."""
        with self._lock:
            last = self._written.get(device_id)
            if last is None or not 0 <= now - last < self.EVERY:
                if len(self._written) >= self.max_entries:
                    self._written.clear()
                self._written[device_id] = now
                if not self._waiting:
                    self._since = now
                self._waiting[device_id] = now
            if self._waiting and (len(self._waiting) >= self.BATCH
                                  or not 0 <= now - self._since < self.HOLD):
                return self._take()
            return {}

    def take(self) -> dict[str, float]:
        with self._lock:
            return self._take()

    def _take(self) -> dict[str, float]:
        due, self._waiting = self._waiting, {}
        return due
