"""Fixtures for the device app tests: a data directory, the stub provider, a service."""

from __future__ import annotations

import shutil
import threading
import time
from typing import Callable

import pytest

from device_app.core.service import AppService

from app_remote import AppRemote
from provider_process import ProviderProcess
from stub_provider import StubProvider


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "device-data"


@pytest.fixture
def stub():
    provider = StubProvider().start()
    yield provider
    provider.stop()


class LockedDispatch:
    """Runs callbacks at once under one lock, standing in for the UI thread."""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def __call__(self, fn: Callable[[], None]) -> None:
        with self.lock:
            fn()


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """A real ``ciba-provider serve`` on 127.0.0.1 with user alice and a poll-mode client."""
    with ProviderProcess(tmp_path_factory.mktemp("provider")).setup() as process:
        yield process


@pytest.fixture
def app(tmp_path):
    """The real app under xvfb-run, remote-controlled (see app_driver.py)."""
    if shutil.which("xvfb-run") is None:
        pytest.fail("xvfb-run is needed (Debian package xvfb)")
    remote = AppRemote(tmp_path / "device-data", tmp_path / "app.log")
    yield remote
    remote.close()


@pytest.fixture
def service(data_dir):
    svc = AppService(data_dir, dispatch=LockedDispatch())
    yield svc
    svc.stop()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
