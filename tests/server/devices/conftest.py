"""Fixtures for the device tests: enrolled devices, CIBA requests, and the token endpoint."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from server.admin import add_user
from server.oauth.decisions import sweep_expired

from ...conftest import CIBA, ISSUER
from .helpers import DeviceKey


@pytest.fixture
def bob(provider):
    return add_user(provider, "bob", "bob-password", name="Bob", email="bob@example.com")


@pytest.fixture
def enroll(provider, http):
    """enroll(user) -> an enrolled DeviceKey, through POST /device/enroll."""

    def do(user, name: str = "Test phone") -> DeviceKey:
        offer = provider.devices.new_enrollment(user.id)
        code = parse_qs(urlsplit(offer.uri).query)["code"][0]
        device = DeviceKey(ISSUER)
        r = http.post("/device/enroll", json=device.enroll_body(code, name))
        assert r.status_code == 201, r.get_json()
        return device.enrolled(r.get_json())

    return do


@pytest.fixture
def phone(enroll, alice) -> DeviceKey:
    return enroll(alice, "Alice's phone")


@pytest.fixture
def bc_authorize(http, kiosk):
    """bc_authorize(**form) -> response of POST /bc-authorize by the kiosk client."""

    def do(creds=kiosk, **form):
        data = {"scope": "openid email", "login_hint": "alice", "binding_message": "LIB-4 7F3K"}
        data.update(form)
        data = {k: v for k, v in data.items() if v is not None}
        return http.post("/bc-authorize", data=data, headers=creds.basic())

    return do


@pytest.fixture
def token(http, kiosk):
    def do(auth_req_id: str, creds=kiosk):
        return http.post("/token", data={"grant_type": CIBA, "auth_req_id": auth_req_id},
                         headers=creds.basic())

    return do


@pytest.fixture
def pending_ids(http, clock):
    """pending_ids(device) -> the device request ids it can see."""

    def do(device: DeviceKey) -> list[str]:
        r = http.get("/device/requests", headers=device.headers("GET", "/device/requests",
                                                                clock.now()))
        assert r.status_code == 200, r.get_json()
        return [item["request_id"] for item in r.get_json()["requests"]]

    return do


@pytest.fixture
def decide(http, clock):
    """decide(device, request_id, accept, binding_message) -> response."""

    def do(device: DeviceKey, request_id: str, accept: bool = True,
           binding_message: str | None = "LIB-4 7F3K", signer: DeviceKey | None = None,
           claims: dict | None = None):
        path = f"/device/requests/{request_id}/decision"
        decision = (signer or device).decision(request_id, accept, binding_message, clock.now(),
                                               claims)
        return http.post(path, json={"decision": decision},
                         headers=device.headers("POST", path, clock.now()))

    return do


@pytest.fixture
def sweep(provider):
    return lambda: sweep_expired(provider)
