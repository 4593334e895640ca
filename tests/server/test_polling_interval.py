"""The polling interval rule without database writes (server/oauth/polling.py): CIBA §7.3
interval, §11 slow_down, and RFC 8628 §3.5's +5 s that sticks; in one process's memory, and in
Redis for several processes (or this process's memory while Redis is down)."""

from __future__ import annotations

import uuid

import pytest

from server.oauth.polling import MemoryPolls, RedisPolls


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
