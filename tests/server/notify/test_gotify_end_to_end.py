"""The whole flow in Gotify mode over real processes and sockets on 127.0.0.1 (issue 6).

A real ``ciba-provider serve`` process (started with ``--gotify-url`` / ``--gotify-admin-user``
and the password in ``CIBA_GOTIFY_ADMIN_PASSWORD``), the Gotify-compatible server built strictly
from Gotify's REST spec (tests/support/gotify_server.py; every call checked against the spec),
and the device side built from device_app/core: its enrollment, keys, signed API client and
GotifyListener. A CIBA client posts bc-authorize and polls /token.
"""

from __future__ import annotations

import queue
import re
import time

import pytest
import requests

from device_app.core.api import ProviderClient
from device_app.core.enrollment import enroll, parse_enrollment_uri
from device_app.core.gotify_listener import CONNECTED, DISCONNECTED, GotifyListener
from device_app.core.store import AccountStore
from device_app.core.ws_listener import Backoff
from tests.support.gotify_server import GotifyServer
from tests.support.provider_process import ProviderProcess

CIBA = "urn:openid:params:grant-type:ciba"
KIOSK = ("library-kiosk", "kiosk-secret-for-tests-0123456789")
GOTIFY_ADMIN = ("root", "gotify-admin-e2e-pw")
WAIT = 10  # seconds an event may take before the test fails; passing tests do not wait


class GotifyProvider(ProviderProcess):
    """``ciba-provider serve --gotify-url URL --gotify-admin-user USER`` (password from env),
    or gunicorn's gevent worker (the production setup) with all three from the environment."""

    def __init__(self, workdir, gotify_url: str, server: str) -> None:
        env = {"CIBA_GOTIFY_ADMIN_PASSWORD": GOTIFY_ADMIN[1], "CIBA_GOTIFY_TIMEOUT": "2"}
        if server == "gunicorn":
            env.update(CIBA_GOTIFY_URL=gotify_url, CIBA_GOTIFY_ADMIN_USER=GOTIFY_ADMIN[0])
        super().__init__(workdir, env=env, server=server)
        self.gotify_url = gotify_url

    def command(self) -> list[str]:
        if self.server == "gunicorn":
            return super().command()
        return super().command() + ["--gotify-url", self.gotify_url,
                                    "--gotify-admin-user", GOTIFY_ADMIN[0]]


def next_item(q: queue.Queue, want=lambda item: True):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            item = q.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if want(item):
            return item
    raise AssertionError("nothing arrived in time")


def bc_authorize(op, binding_message: str) -> str:
    r = requests.post(op.url("/bc-authorize"), auth=KIOSK, timeout=10,
                      data={"scope": "openid email", "login_hint": "alice",
                            "binding_message": binding_message})
    assert r.status_code == 200, r.text
    return r.json()["auth_req_id"]


def token_result(op, auth_req_id: str) -> dict:
    """Poll /token (interval 1 s) until the request is no longer pending."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        body = requests.post(op.url("/token"), auth=KIOSK, timeout=10,
                             data={"grant_type": CIBA, "auth_req_id": auth_req_id}).json()
        if body.get("error") not in ("authorization_pending", "slow_down"):
            return body
        time.sleep(1.1)
    raise AssertionError("the request stayed pending")


def admin_page(op) -> str:
    browser = requests.Session()
    page = browser.get(op.url("/account/login"), timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    browser.post(op.url("/account/login"), timeout=10, data={
        "username": "alice", "password": "alice-password-123", "csrf_token": csrf})
    return browser.get(op.url("/admin/"), timeout=10).text


@pytest.mark.parametrize("server", ["serve", "gunicorn"])
def test_gotify_mode_end_to_end_with_an_outage(tmp_path, server):
    with GotifyServer(*GOTIFY_ADMIN) as gotify, \
            GotifyProvider(tmp_path, gotify.url, server) as op:
        op.cli("users", "add", "alice", "--password", "alice-password-123", "--name", "Alice",
               "--admin")
        op.cli("clients", "add", KIOSK[0], "--secret", KIOSK[1], "--polling-interval", "1",
               "--scope", "openid email profile", "--name", "Library kiosk")
        uri = next(line for line in op.cli("devices", "enroll", "alice").splitlines()
                   if line.startswith("ciba-enroll://"))

        # enroll with push=gotify: the channel names the Gotify server and a client token
        store = AccountStore(tmp_path / "device")
        account = enroll(store, parse_enrollment_uri(uri), "E2E phone", push="gotify")
        assert account.channel["type"] == "gotify" and account.channel["url"] == gotify.url
        api = ProviderClient(account, store.keys.load(account.device_id))
        messages, states = queue.Queue(), queue.Queue()
        listener = GotifyListener(account.channel["url"], account.channel["client_token"],
                                  messages.put, states.put, backoff=Backoff(0.1, 0.5),
                                  ping_interval=2)
        listener.start()
        try:
            next_item(states, lambda s: s == CONNECTED)

            # 1. the request is announced on the Gotify stream; the device fetches and accepts
            first = bc_authorize(op, "LIB-4 7F3K")
            message = next_item(messages)
            extras = message["extras"]["ciba::request"]
            assert extras["event"] == "login_request"
            assert "Library kiosk" in message["title"] and "LIB-4 7F3K" in message["message"]
            assert first not in str(message)
            request = api.get_request(extras["request_id"])  # a signed call
            assert request["binding_message"] == "LIB-4 7F3K"
            assert api.decide(extras["request_id"], True, request["binding_message"]).outcome \
                == "approved"
            tokens = token_result(op, first)
            assert tokens["token_type"].lower() == "bearer" and tokens["id_token"]
            resolved = next_item(messages)
            assert resolved["extras"]["ciba::request"]["status"] == "approved"

            # 2. Gotify goes down mid-flow: the request is still made, the device fetches it
            gotify.go_down("refuse")
            next_item(states, lambda s: s == DISCONNECTED)
            started = time.monotonic()
            second = bc_authorize(op, "LIB-5 9QX2")
            assert time.monotonic() - started < 1.5
            (pending,) = api.list_requests()
            assert pending["binding_message"] == "LIB-5 9QX2"
            assert api.decide(pending["request_id"], False, "LIB-5 9QX2").outcome == "denied"
            assert token_result(op, second)["error"] == "access_denied"
            deadline = time.monotonic() + WAIT
            while "createMessage" not in (page := admin_page(op)):
                assert time.monotonic() < deadline, page
                time.sleep(0.2)
            assert 'class="failure"' in page and "unreachable" in page
            assert GOTIFY_ADMIN[1] not in page

            # 3. Gotify comes back; the listener reconnects and the next request arrives on it
            gotify.come_back()
            next_item(states, lambda s: s == CONNECTED)
            third = bc_authorize(op, "LIB-6 2B7C")
            message = next_item(messages, lambda m: m["extras"]["ciba::request"]["event"]
                                == "login_request")
            assert api.get_request(message["extras"]["ciba::request"]["request_id"])[
                "binding_message"] == "LIB-6 2B7C"
            assert third not in str(message)
        finally:
            listener.stop()
        assert gotify.violations == []
        assert account.channel["client_token"] not in op.log_tail(200_000)
        assert GOTIFY_ADMIN[1] not in op.log_tail(200_000)
