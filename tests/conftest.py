"""Shared fixtures: a provider app on a real SQLite file with a steppable clock, users, clients.

Server-process fixtures (a real ``ciba-provider serve`` on 127.0.0.1) live in tests/support/.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import pytest

from server import create_app
from server.admin import ClientSpec, add_client, add_user
from server.clock import FrozenClock
from server.config import Settings

ISSUER = "http://op.test"
CIBA = "urn:openid:params:grant-type:ciba"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(instance_path=str(tmp_path / "instance"), issuer=ISSUER)


@pytest.fixture
def app(settings, clock):
    app = create_app(settings, clock=clock)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def provider(app):
    return app.extensions["ciba"]


@pytest.fixture
def http(app):
    """Flask test client (for protocol tests; end-to-end tests use a real server process)."""
    return app.test_client()


@pytest.fixture
def alice(provider):
    return add_user(provider, "alice", "alice-password", name="Alice Liddell",
                    email="alice@example.com")


@dataclass
class ClientCreds:
    client_id: str
    secret: str | None
    metadata: dict

    def basic(self) -> dict:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def make_client(provider):
    def make(client_id: str = "kiosk", **kwargs) -> ClientCreds:
        metadata, secret = add_client(provider, ClientSpec(client_id=client_id, **kwargs))
        return ClientCreds(client_id, secret, metadata)

    return make


@pytest.fixture
def kiosk(make_client) -> ClientCreds:
    return make_client("kiosk", name="Library kiosk")


@pytest.fixture(scope="session")
def browser():
    """One Chromium (Playwright) for the whole session: Playwright's sync API allows only one
    running instance per thread, so every browser test shares this one."""
    from tests.support.browser import launch

    yield from launch()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true) nothing may be skipped: a missing browser, display or server is a
    failure there, because .ci/setup installs them all."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where everything is installed: {report.longrepr}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A test CA with a server certificate for 127.0.0.1 (tests/support/certs.py)."""
    from tests.support.certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))
