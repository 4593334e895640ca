"""The polling interval rule of the token endpoint (CIBA §7.3 interval, §11 slow_down; RFC 8628
§3.5: after slow_down the interval grows by 5 seconds for this and all later requests).

A pending poll writes nothing to the database: the time of the last poll and the grown interval
live in this process's memory, or in Redis when several processes share the work
(``CIBA_REDIS_URL``), where one Lua script reads and updates them atomically, so two polls
racing on two processes cannot both pass. Losing this state (a restart) only forgets a
slow_down; the request itself is durable in the database.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class PollTracker(Protocol):
    def poll(self, request_id: str, now: float, interval: int, increment: int,
             expires_at: float) -> tuple[bool, int]:
        """Record a poll; returns (too fast, the request's interval from now on)."""


class MemoryPolls:
    """One process: a dict, pruned of expired requests as it grows."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int, float]] = {}  # id -> (last, interval, expires)
        self.max_entries = max_entries

    def poll(self, request_id: str, now: float, interval: int, increment: int,
             expires_at: float) -> tuple[bool, int]:
        with self._lock:
            last, interval, _ = self._seen.get(request_id, (None, interval, expires_at))
            too_fast = last is not None and now - last < interval
            if too_fast:
                interval += increment
            if len(self._seen) >= self.max_entries:
                self._prune(now)
            self._seen[request_id] = (now, interval, expires_at)
        return too_fast, interval

    def _prune(self, now: float) -> None:
        live = {k: v for k, v in self._seen.items() if v[2] > now}
        if len(live) >= self.max_entries:  # all live: keep the most recent half
            live = dict(sorted(live.items(), key=lambda kv: kv[1][0])[len(live) // 2:])
        self._seen = live


_SCRIPT = """
local last = redis.call('HGET', KEYS[1], 'last')
local interval = tonumber(redis.call('HGET', KEYS[1], 'interval') or ARGV[2])
local now = tonumber(ARGV[1])
local too_fast = 0
if last and now - tonumber(last) < interval then
  too_fast = 1
  interval = interval + tonumber(ARGV[3])
end
redis.call('HSET', KEYS[1], 'last', ARGV[1], 'interval', interval)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {too_fast, interval}
"""


class RedisPolls:
    """Several processes: one hash per request in Redis, updated by one atomic script."""

    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5,
                                           health_check_interval=30)
        self._script = self._redis.register_script(_SCRIPT)
        self._prefix = f"ciba:poll:{namespace}:"
        self._fallback = MemoryPolls()

    def poll(self, request_id: str, now: float, interval: int, increment: int,
             expires_at: float) -> tuple[bool, int]:
        # The key outlives the request a little; with a frozen test clock it still expires.
        ttl = max(60, int(expires_at - now) + 60)
        try:
            too_fast, new_interval = self._script(
                keys=[self._prefix + request_id],
                args=[repr(float(now)), interval, increment, ttl])
        except Exception as exc:  # Redis down: this process still enforces the interval
            log.warning("Redis unreachable for the polling interval (%s); using this "
                        "process's memory", type(exc).__name__)
            return self._fallback.poll(request_id, now, interval, increment, expires_at)
        return bool(too_fast), int(new_interval)


def make_tracker(redis_url: str, namespace: str) -> PollTracker:
    if redis_url:
        import hashlib

        return RedisPolls(redis_url, hashlib.sha256(namespace.encode()).hexdigest()[:16])
    return MemoryPolls()
