"""Fixtures shared by the provider tests that need real services."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.support.provider_process import free_port


def _start_redis() -> tuple[str, subprocess.Popen]:
    import redis

    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", proc


@pytest.fixture(scope="session")
def redis_url():
    """CIBA_TEST_REDIS_URL, or a redis-server of the test session's own."""
    pytest.importorskip("redis")
    if os.environ.get("CIBA_TEST_REDIS_URL"):
        yield os.environ["CIBA_TEST_REDIS_URL"]
        return
    if not shutil.which("redis-server"):
        pytest.skip("no CIBA_TEST_REDIS_URL and redis-server is not installed")
    url, proc = _start_redis()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, which the test may stop: (url, process)."""
    pytest.importorskip("redis")
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    url, proc = _start_redis()
    yield url, proc
    proc.terminate()
    proc.wait(10)
