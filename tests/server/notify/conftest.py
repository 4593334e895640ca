"""Fixtures for the Gotify channel tests: a provider app wired to the fake Gotify server.

The Gotify server is tests/support/gotify_server.py, built strictly from Gotify's REST spec
(tests/support/gotify/spec.json) and served over real HTTP and WebSocket on 127.0.0.1; every
request the provider sends it is validated against the spec (``gotify.violations``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from server.config import Settings
from tests.server.devices.conftest import bc_authorize, decide, pending_ids, token  # noqa: F401
from tests.server.devices.helpers import DeviceKey
from tests.support.gotify_server import GotifyServer

from ...conftest import ISSUER

GOTIFY_ADMIN = ("root", "gotify-admin-pw-0123")


@pytest.fixture
def gotify():
    with GotifyServer(*GOTIFY_ADMIN) as server:
        yield server
        assert server.violations == []


@pytest.fixture
def settings(tmp_path, gotify) -> Settings:
    return Settings(instance_path=str(tmp_path / "instance"), issuer=ISSUER,
                    gotify_url=gotify.url, gotify_admin_user=GOTIFY_ADMIN[0],
                    gotify_admin_password=GOTIFY_ADMIN[1], gotify_timeout=2)


@pytest.fixture
def channel(provider):
    """The provider's Gotify channel; its pool is drained at the end of each test."""
    yield provider.gotify_channel
    provider.gotify_channel.wait_idle()


@pytest.fixture
def enroll_gotify(provider, http):
    """enroll_gotify(user) -> (DeviceKey, enrollment response) with push=gotify."""

    def do(user, name: str = "Alice's phone", push: str = "gotify"):
        offer = provider.devices.new_enrollment(user.id)
        code = parse_qs(urlsplit(offer.uri).query)["code"][0]
        device = DeviceKey(ISSUER)
        r = http.post("/device/enroll", json=device.enroll_body(code, name, push=push))
        if r.status_code != 201:
            return device, r
        return device.enrolled(r.get_json()), r

    return do


@pytest.fixture
def gphone(enroll_gotify, alice) -> DeviceKey:
    device, r = enroll_gotify(alice)
    assert r.status_code == 201, r.get_json()
    return device


def csrf(page) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)
    return match.group(1)


@pytest.fixture
def browser(app):
    """sign_in(username, password) -> a signed-in test client."""

    def sign_in(username: str = "alice", password: str = "alice-password"):
        client = app.test_client()
        page = client.get("/account/login")
        r = client.post("/account/login", data={"username": username, "password": password,
                                                "csrf_token": csrf(page)})
        assert r.status_code == 302, r.get_data(as_text=True)
        return client

    return sign_in
