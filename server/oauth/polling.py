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
import os
import threading
import time
from typing import Protocol

from .. import oslocks

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

    def surely_too_fast(self, request_id: str, now: float, increment: int,
                        expires_at: float) -> int | None:
        """When what is remembered already makes this poll too fast: record it (the grown
        interval) and return that interval; else None, recording nothing."""
        with self._lock:
            seen = self._seen.get(request_id)
            if seen is None or now - seen[0] >= seen[1]:
                return None
            interval = seen[1] + increment
            self._seen[request_id] = (max(seen[0], now), interval, expires_at)
        return interval

    def remember(self, request_id: str, last: float, interval: int, expires_at: float) -> None:
        with self._lock:
            if len(self._seen) >= self.max_entries:
                self._prune(last)
            self._seen[request_id] = (last, interval, expires_at)

    def _prune(self, now: float) -> None:
        live = {k: v for k, v in self._seen.items() if v[2] > now}
        if len(live) >= self.max_entries:  # all live: keep the most recent half
            live = dict(sorted(live.items(), key=lambda kv: kv[1][0])[len(live) // 2:])
        self._seen = live


# ``last`` never goes back: a poll recorded late (sent after a later one, see RedisPolls) keeps
# the later time.
_SCRIPT = """
local last = redis.call('HGET', KEYS[1], 'last')
local interval = tonumber(redis.call('HGET', KEYS[1], 'interval') or ARGV[2])
local now = tonumber(ARGV[1])
local too_fast = 0
if last and now - tonumber(last) < interval then
  too_fast = 1
  interval = interval + tonumber(ARGV[3])
end
local newest = ARGV[1]
if last and tonumber(last) > now then newest = last end
redis.call('HSET', KEYS[1], 'last', newest, 'interval', interval)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {too_fast, interval}
"""


# The record of k polls that were surely too fast (RedisPolls): what running _SCRIPT once for
# each would do, as each of them would find the poll too fast.
_BUMP = """
local interval = tonumber(redis.call('HGET', KEYS[1], 'interval') or ARGV[2]) + tonumber(ARGV[3])
local last = redis.call('HGET', KEYS[1], 'last')
local newest = ARGV[1]
if last and tonumber(last) > tonumber(ARGV[1]) then newest = last end
redis.call('HSET', KEYS[1], 'last', newest, 'interval', interval)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""


class RedisPolls:
    """Several processes: one hash per request in Redis, updated by one atomic script.

    A round trip per poll halved what a process answered (docs/performance.md, round 10), and
    most polls of a pending request are too fast. So each process remembers, per request, the
    last poll and interval it recorded or read: both only grow in Redis, so when they already
    make a poll too fast, it is too fast whatever other processes saw. That poll is answered
    slow_down at once; its record (the same +5 s) waits, merged with the request's other such
    polls, for a background loop that sends all waiting records in one pipeline every
    ``GATHER`` seconds at most. Any other poll asks Redis after sending the waiting records
    first, in the same pipeline: Redis sees this process's polls in order. Other processes see
    a waiting record a few milliseconds late: only a poll there within those milliseconds of
    its interval's end can pass where it would have been told slow_down."""

    #: Seconds the background loop gathers records before sending them.
    GATHER = 0.005

    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5,
                                           health_check_interval=30)
        self._script = self._redis.register_script(_SCRIPT)
        self._bump = self._redis.register_script(_BUMP)
        self._prefix = f"ciba:poll:{namespace}:"
        self._fallback = MemoryPolls()
        self._known = MemoryPolls()  # lower bounds of what Redis holds, per request
        # request id -> (latest poll, polls, interval, increment, expires_at), not sent yet
        self._waiting: dict[str, tuple[float, int, int, int, float]] = {}
        self._waiting_lock = oslocks.os_lock()  # never yields inside (server/oslocks.py)
        self._send_lock = threading.Lock()  # held across Redis I/O: gevent's under gevent
        self._wake = threading.Event()
        self._sender_pid = 0

    def poll(self, request_id: str, now: float, interval: int, increment: int,
             expires_at: float) -> tuple[bool, int]:
        grown = self._known.surely_too_fast(request_id, now, increment, expires_at)
        if grown is not None:
            with self._waiting_lock:
                latest, polls, *_ = self._waiting.get(request_id, (now, 0))
                self._waiting[request_id] = (max(latest, now), polls + 1, interval, increment,
                                             expires_at)
            self._send_soon()
            return True, grown
        try:
            with self._send_lock:
                pipe = self._redis.pipeline(transaction=False)
                self._waiting_into(pipe)
                self._script(client=pipe, **self._record(request_id, now, interval, increment,
                                                         expires_at))
                too_fast, new_interval = pipe.execute()[-1]
        except Exception as exc:  # Redis down: this process still enforces the interval
            log.warning("Redis unreachable for the polling interval (%s); using this "
                        "process's memory", type(exc).__name__)
            return self._fallback.poll(request_id, now, interval, increment, expires_at)
        self._known.remember(request_id, now, int(new_interval), expires_at)
        return bool(too_fast), int(new_interval)

    def _record(self, request_id: str, now: float, interval: int, increment: int,
                expires_at: float) -> dict:
        # The key outlives the request a little; with a frozen test clock it still expires.
        ttl = max(60, int(expires_at - now) + 60)
        return {"keys": [self._prefix + request_id],
                "args": [repr(float(now)), interval, increment, ttl]}

    def _waiting_into(self, pipe) -> int:
        """Every waiting record into ``pipe`` (the send lock held)."""
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, {}
        for request_id, (latest, polls, interval, increment, expires_at) in waiting.items():
            self._bump(client=pipe, **self._record(request_id, latest, interval,
                                                   polls * increment, expires_at))
        return len(waiting)

    def _send_soon(self) -> None:
        if self._sender_pid != os.getpid():  # first use, or a forked child
            self._sender_pid = os.getpid()
            threading.Thread(target=self._send_waiting, name="ciba-polls", daemon=True).start()
        self._wake.set()

    def _send_waiting(self) -> None:
        """The background loop: waiting records to Redis, in one pipeline per round."""
        while True:
            self._wake.wait()
            time.sleep(self.GATHER)
            self._wake.clear()
            try:
                with self._send_lock:
                    pipe = self._redis.pipeline(transaction=False)
                    if self._waiting_into(pipe):
                        pipe.execute()
            except Exception as exc:  # lost records only forget some slow_downs
                log.warning("Redis unreachable for the polling interval (%s); records of "
                            "polls not sent", type(exc).__name__)


def make_tracker(redis_url: str, namespace: str) -> PollTracker:
    if redis_url:
        import hashlib

        return RedisPolls(redis_url, hashlib.sha256(namespace.encode()).hexdigest()[:16])
    return MemoryPolls()
