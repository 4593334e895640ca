"""End to end against the real server process on 127.0.0.1: user and client from the CLI, the
poll-mode flow with ``requests``, approval through the console page found in the server's log,
and the ID token verified against the published JWKS."""

from __future__ import annotations

import re
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.provider_process import ProviderProcess

CIBA = "urn:openid:params:grant-type:ciba"

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    process = ProviderProcess(tmp_path).start()
    yield process
    process.stop()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def poll_until_done(issuer: str, auth: tuple[str, str], auth_req_id: str, interval: int,
                    limit: float = 30.0) -> requests.Response:
    deadline = time.monotonic() + limit
    while True:
        response = requests.post(issuer + "/token", auth=auth, timeout=10,
                                 data={"grant_type": CIBA, "auth_req_id": auth_req_id})
        if response.status_code == 200 or response.json().get("error") != "authorization_pending":
            return response
        assert time.monotonic() < deadline, "no decision in time"
        time.sleep(interval)  # the polling interval the provider asked for


@pytest.mark.parametrize("decision", ["accept", "deny"])
def test_flow_through_the_console_page(server, decision):
    alice = server.cli_json("users", "add", "alice", "--password", "alice-pw",
                            "--name", "Alice Liddell", "--email", "alice@example.com")
    client = server.cli_json("clients", "add", "kiosk", "--name", "Library kiosk",
                             "--polling-interval", "1")
    auth = ("kiosk", client["client_secret"])
    issuer = server.issuer

    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer

    logged_before = len(server.lines)
    started = requests.post(meta["backchannel_authentication_endpoint"], auth=auth, timeout=10,
                            data={"scope": "openid profile email", "login_hint": "alice",
                                  "binding_message": "W4SCT"})
    assert started.status_code == 200, started.text
    assert started.headers["Cache-Control"] == "no-store"
    body = started.json()
    assert body["interval"] == 1
    pending = requests.post(meta["token_endpoint"], auth=auth, timeout=10,
                            data={"grant_type": CIBA, "auth_req_id": body["auth_req_id"]})
    assert pending.json()["error"] == "authorization_pending"

    # the person: opens the logged link, signs in, reads, decides
    link = server.approval_link("alice", after=logged_before)
    assert link.startswith(issuer + "/approve/")
    browser = requests.Session()
    page = browser.get(link, timeout=10)
    assert "Sign in to review" in page.text
    page = browser.post(link, timeout=10, data={"action": "sign_in", "username": "alice",
                                                "password": "alice-pw", "csrf_token": csrf(page.text)})
    assert page.status_code == 200
    assert "Library kiosk" in page.text and "W4SCT" in page.text
    done = browser.post(link, timeout=10, data={"action": decision, "csrf_token": csrf(page.text)})
    assert ("Request approved" if decision == "accept" else "Request denied") in done.text

    result = poll_until_done(issuer, auth, body["auth_req_id"], body["interval"])
    if decision == "deny":
        assert result.status_code == 400 and result.json()["error"] == "access_denied"
        return
    assert result.status_code == 200, result.text
    tokens = result.json()
    jwks = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    id_token = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"])
    assert id_token.header["alg"] == "RS256"
    claims = id_token.claims
    assert claims["iss"] == issuer and claims["aud"] == "kiosk" and claims["sub"] == alice["id"]
    assert claims["exp"] > time.time() and claims["auth_time"] <= time.time() + 1
    access = jwt.decode(tokens["access_token"], jwks, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt"

    userinfo = requests.get(meta["userinfo_endpoint"], timeout=10,
                            headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert userinfo.json() == {"sub": alice["id"], "name": "Alice Liddell",
                               "preferred_username": "alice", "email": "alice@example.com",
                               "email_verified": False}


def test_pending_request_survives_a_restart(tmp_path):
    first = ProviderProcess(tmp_path).start()
    try:
        first.cli("users", "add", "alice", "--password", "pw")
        secret = first.cli_json("clients", "add", "kiosk")["client_secret"]
        started = requests.post(first.issuer + "/bc-authorize", auth=("kiosk", secret),
                                data={"scope": "openid", "login_hint": "alice"}, timeout=10)
        auth_req_id = started.json()["auth_req_id"]
        jwks_before = requests.get(first.issuer + "/jwks", timeout=10).json()
    finally:
        first.stop()
    second = ProviderProcess(tmp_path, port=first.port).start()  # the same issuer
    try:
        again = requests.post(second.issuer + "/token", auth=("kiosk", secret), timeout=10,
                              data={"grant_type": CIBA, "auth_req_id": auth_req_id})
        assert again.json()["error"] in ("authorization_pending", "slow_down")
        assert requests.get(second.issuer + "/jwks", timeout=10).json() == jwks_before
    finally:
        second.stop()
