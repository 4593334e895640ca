"""The polling interval rule without database writes (server/oauth/polling.py): CIBA §7.3
interval, §11 slow_down, and RFC 8628 §3.5's +5 s that sticks; in one process's memory, and in
Redis for several processes (or this process's memory while Redis is down); a poll that is
surely too fast is answered without waiting for Redis, and recorded there soon after."""

from __future__ import annotations

import uuid

import pytest

from server.oauth.polling import MemoryPolls, RedisPolls
from tests.support.waiting import eventually


def script(tracker, request_id: str) -> list[tuple[bool, int]]:
    """Polls at t = 0, 1, 11, 20, 35 with a 5 s interval."""
    return [tracker.poll(request_id, t, 5, 5, 1000.0) for t in (0.0, 1.0, 11.0, 20.0, 35.0)]


EXPECTED = [(False, 5), (True, 10), (False, 10), (True, 15), (False, 15)]


def test_memory_tracker_applies_slow_down_and_keeps_the_grown_interval():
    assert script(MemoryPolls(), "r1") == EXPECTED


def test_memory_tracker_forgets_expired_requests_first_when_full():
    polls = MemoryPolls(max_entries=4)
    for i in range(3):
        polls.poll(f"old{i}", 0.0, 5, 5, expires_at=10.0)
    polls.poll("live", 49.0, 5, 5, expires_at=1000.0)
    polls.poll("new", 50.0, 5, 5, expires_at=1000.0)  # full: the expired ones go
    assert polls.poll("live", 51.0, 5, 5, 1000.0) == (True, 10)  # still remembered
    assert polls.poll("old0", 51.0, 5, 5, 1000.0) == (False, 5)  # forgotten


def test_redis_tracker_is_shared_between_processes(redis_url):
    first, second = RedisPolls(redis_url, "test"), RedisPolls(redis_url, "test")
    rid = uuid.uuid4().hex
    assert first.poll(rid, 100.0, 5, 5, 1000.0) == (False, 5)
    assert second.poll(rid, 101.0, 5, 5, 1000.0) == (True, 10)
    assert first.poll(rid, 112.0, 5, 5, 1000.0) == (False, 10)


def test_redis_tracker_follows_the_same_rule(redis_url):
    assert script(RedisPolls(redis_url, "test"), uuid.uuid4().hex) == EXPECTED


def test_redis_down_falls_back_to_this_process(caplog):
    pytest.importorskip("redis")
    polls = RedisPolls("redis://127.0.0.1:1/0", "test")  # nothing listens on port 1
    assert script(polls, "r1") == EXPECTED
    assert "Redis unreachable" in caplog.text




def test_a_surely_too_fast_poll_is_recorded_in_redis_soon_after(redis_url):
    first, second = RedisPolls(redis_url, "test"), RedisPolls(redis_url, "test")
    rid = uuid.uuid4().hex
    assert first.poll(rid, 100.0, 5, 5, 1000.0) == (False, 5)
    assert first.poll(rid, 101.0, 5, 5, 1000.0) == (True, 10)  # answered from memory
    assert first.poll(rid, 103.0, 5, 5, 1000.0) == (True, 15)
    assert first.poll(rid, 102.0, 5, 5, 1000.0) == (True, 20)  # (threads: out of order)
    key = first._prefix + rid
    import redis

    client = redis.Redis.from_url(redis_url)
    assert eventually(lambda: client.hget(key, "interval") == b"20")  # each +5 s, in Redis
    assert float(client.hget(key, "last")) == 103.0
    assert second.poll(rid, 110.0, 5, 5, 1000.0) == (True, 25)  # another process sees them
    assert first.poll(rid, 124.0, 5, 5, 1000.0) == (True, 30)  # and this one sees that


def test_a_surely_too_fast_poll_needs_no_redis_round_trip(own_redis, caplog):
    url, server = own_redis
    polls = RedisPolls(url, "test")
    assert polls.poll("r1", 100.0, 5, 5, 1000.0) == (False, 5)
    server.terminate()
    server.wait(10)
    assert polls.poll("r1", 101.0, 5, 5, 1000.0) == (True, 10)  # Redis gone: still answered
    assert polls.poll("r1", 120.0, 5, 5, 1000.0) == (False, 5)  # asks Redis: falls back
    assert "Redis unreachable" in caplog.text


def test_a_late_record_never_moves_the_last_poll_back(redis_url):
    polls = RedisPolls(redis_url, "test")
    rid = uuid.uuid4().hex
    polls.poll(rid, 200.0, 5, 5, 1000.0)
    other = RedisPolls(redis_url, "test")
    other._script(**other._record(rid, 150.0, 5, 5, 1000.0))  # a poll recorded late
    import redis

    assert float(redis.Redis.from_url(redis_url).hget(polls._prefix + rid, "last")) == 200.0
