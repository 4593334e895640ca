"""Passkey ceremonies over HTTP with a software authenticator (tests/support): what the
provider refuses. The happy path in a real browser is tests/server/browser/."""

from __future__ import annotations

import re

import pytest

from server.admin_users import set_disabled
from tests.support.soft_authenticator import UP, SoftAuthenticator

ORIGIN = "http://op.test"


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def call(client, path: str, token: str, body=None):
    return client.post(path, json=body or {}, headers={"X-CSRF-Token": token})


@pytest.fixture
def authenticator():
    return SoftAuthenticator("op.test", ORIGIN)


@pytest.fixture
def registered(app, alice, authenticator):
    """alice with a passkey, added on her account page."""
    client = app.test_client()
    page = client.get("/account/login")
    client.post("/account/login", data={"username": "alice", "password": "alice-password",
                                        "csrf_token": csrf(page)})
    token = csrf(client.get("/account/"))
    options = call(client, "/account/passkeys/register/options", token).get_json()
    assert options["rp"]["id"] == "op.test"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    r = call(client, "/account/passkeys/register", token,
             {"credential": authenticator.create(options), "name": "Soft key"})
    assert r.status_code == 201, r.get_json()
    assert "Soft key" in client.get("/account/").get_data(as_text=True)
    return authenticator


def signin(app, authenticator, **kwargs):
    """(response, client): the whole sign-in ceremony in a fresh browser session."""
    client = app.test_client()
    token = csrf(client.get("/account/login"))
    options = call(client, "/account/passkeys/signin/options", token).get_json()
    assert options["userVerification"] == "required" and options["rpId"] == "op.test"
    credential = authenticator.get(options, **kwargs)
    return call(client, "/account/passkeys/signin", token, {"credential": credential}), client


def test_a_passkey_signs_in(app, registered):
    r, client = signin(app, registered)
    assert r.status_code == 200 and r.get_json() == {"username": "alice"}
    assert client.get("/account/").status_code == 200


@pytest.mark.parametrize("kwargs, words", [
    ({"origin": "http://evil.test"}, "could not be verified"),
    ({"flags": UP}, "could not be verified"),  # no user verification
    ({"count_up": False}, "could not be verified"),  # the signature counter went backwards
])
def test_bad_assertions_are_refused(app, registered, kwargs, words):
    assert signin(app, registered)[0].status_code == 200  # count 1
    r, client = signin(app, registered, **kwargs)
    assert r.status_code == 401 and words in r.get_json()["error"]
    assert client.get("/account/").status_code == 302  # not signed in


def test_a_challenge_works_once(app, registered):
    client = app.test_client()
    token = csrf(client.get("/account/login"))
    options = call(client, "/account/passkeys/signin/options", token).get_json()
    cookie = client.get_cookie("session").value
    credential = registered.get(options)
    assert call(client, "/account/passkeys/signin", token, {"credential": credential}).status_code == 200
    # the same answer again, with the session cookie as it was before
    replay = app.test_client()
    replay.set_cookie("session", cookie, domain="localhost")
    r = call(replay, "/account/passkeys/signin", token, {"credential": registered.get(options)})
    assert r.status_code == 401 and "used already" in r.get_json()["error"]


def test_an_unknown_passkey_or_a_disabled_user_is_refused(app, provider, registered):
    set_disabled(provider, "alice", True, actor="operator:olga")
    r, _ = signin(app, registered)
    assert r.status_code == 401 and "not known" in r.get_json()["error"]
    stranger = SoftAuthenticator("op.test", ORIGIN)
    r, _ = signin(app, stranger)
    assert r.status_code == 401


def test_calls_need_the_csrf_token_and_a_fresh_challenge(app, registered):
    client = app.test_client()
    assert client.post("/account/passkeys/signin/options", json={}).status_code == 400
    token = csrf(client.get("/account/login"))
    r = call(client, "/account/passkeys/signin", token, {"credential": {"id": "x"}})
    assert r.status_code == 400 and "Start again" in r.get_json()["error"]
    assert call(client, "/account/passkeys/signin", token, {"nothing": 1}).status_code == 400
    assert call(client, "/account/passkeys/register/options", token).status_code == 302


def test_registration_checks_the_origin_and_user_verification(app, alice):
    client = app.test_client()
    page = client.get("/account/login")
    client.post("/account/login", data={"username": "alice", "password": "alice-password",
                                        "csrf_token": csrf(page)})
    token = csrf(client.get("/account/"))
    for kwargs in ({"origin": "http://evil.test"}, {"flags": UP}):
        options = call(client, "/account/passkeys/register/options", token).get_json()
        credential = SoftAuthenticator("op.test", ORIGIN).create(options, **kwargs)
        r = call(client, "/account/passkeys/register", token, {"credential": credential})
        assert r.status_code == 400 and "could not be verified" in r.get_json()["error"]
    assert 'id="passkey-list"' not in client.get("/account/").get_data(as_text=True)


def test_removing_a_passkey(app, provider, registered):
    r, client = signin(app, registered)
    page = client.get("/account/")
    credential_id = re.search(r'action="/account/passkeys/([^"]+)/remove"',
                              page.get_data(as_text=True)).group(1)
    r = client.post(f"/account/passkeys/{credential_id}/remove", data={"csrf_token": csrf(page)})
    assert r.status_code == 302
    assert signin(app, registered)[0].status_code == 401
    assert client.post(f"/account/passkeys/{credential_id}/remove",
                       data={"csrf_token": csrf(page)}).status_code == 404
