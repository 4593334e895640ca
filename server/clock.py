"""One source of time for the whole provider, so tests can step over expiries instead of sleeping."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> float:
        return time.time()

    def now_int(self) -> int:
        return int(self.now())


class FrozenClock(Clock):
    """A clock that only moves when told to; used by tests."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
