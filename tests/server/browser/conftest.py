"""The ``browser`` fixture (one Chromium for the session) is in tests/conftest.py.

A real provider (``ciba-provider serve``) whose issuer is http://localhost:PORT (a secure
context, so WebAuthn works there), Chromium, and helpers that act as an operator, a person
and a consumption device would."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.support.provider_process import ProviderProcess, free_port

CIBA = "urn:openid:params:grant-type:ciba"
OPERATOR = ("olga", "olga-password-1")
ALICE = ("alice", "alice-password-1")


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    port = free_port()
    with ProviderProcess(tmp_path_factory.mktemp("console"), port=port,
                         issuer=f"http://localhost:{port}") as server:
        server.cli("users", "add", OPERATOR[0], "--password", OPERATOR[1], "--name",
                   "Olga Operator", "--admin")
        server.cli("users", "add", ALICE[0], "--password", ALICE[1], "--name", "Alice Liddell",
                   "--email", "alice@example.com")
        yield server


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(20000)
    yield ctx
    ctx.close()


def sign_in(page, op, who=ALICE, path: str = "/account/login") -> None:
    page.goto(op.issuer + path)
    page.fill("input[name=username]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("form button[type=submit].primary")
    page.wait_for_load_state()


def basic(client_id: str, secret: str) -> dict:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def bc_authorize(op, client_id: str, secret: str, binding_message: str, hint: str = "alice"):
    r = requests.post(op.url("/bc-authorize"), headers=basic(client_id, secret), timeout=20,
                      data={"scope": "openid profile", "login_hint": hint,
                            "binding_message": binding_message})
    assert r.status_code == 200, r.text
    return r.json()["auth_req_id"]


def poll(op, client_id: str, secret: str, auth_req_id: str) -> requests.Response:
    return requests.post(op.url("/token"), headers=basic(client_id, secret), timeout=20,
                         data={"grant_type": CIBA, "auth_req_id": auth_req_id})


def audit_lines(op, *args: str) -> list[dict]:
    import json

    return [json.loads(line) for line in op.cli("audit", "export", *args).splitlines() if line]
