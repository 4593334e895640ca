"""The console channel's approval page, as the person opening the logged link sees it: sign in
with the password, read the client's name, the binding message and the scopes, press Accept or
Deny (CSRF-protected); expired and already decided requests say so."""

from __future__ import annotations

import logging
import re

import pytest

from server.admin import add_user

from .ciba_helpers import assert_error, auth_req_id, decide_request, poll

ISSUER = "http://op.test"


def csrf(page) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)
    return match.group(1)


def text(page) -> str:
    return page.get_data(as_text=True)


@pytest.fixture
def request_link(http, alice, kiosk, provider):
    """Start a request; return (auth_req_id, path of the approval link)."""
    req = auth_req_id(http, kiosk, binding_message="W4SCT", scope="openid email")
    link = provider.console.last_links["alice"]
    assert link.startswith(ISSUER + "/approve/")
    return req, link.removeprefix(ISSUER)


def sign_in(browser, path: str, username: str = "alice", password: str = "alice-password"):
    page = browser.get(path)
    assert page.status_code == 200
    assert "Sign in to review a login request" in text(page)
    return browser.post(path, data={"action": "sign_in", "username": username,
                                    "password": password, "csrf_token": csrf(page)})


def test_link_is_logged(http, alice, kiosk, provider, caplog):
    with caplog.at_level(logging.INFO, logger="ciba.console"):
        auth_req_id(http, kiosk, binding_message="W4SCT")
    line = next(r.getMessage() for r in caplog.records if "Approve or deny at:" in r.getMessage())
    assert line.endswith(provider.console.last_links["alice"])
    assert "W4SCT" in line and "alice" in line


def test_page_shows_client_binding_message_and_scopes(http, request_link):
    _, path = request_link
    page = sign_in(http, path)
    assert page.status_code == 200
    body = text(page)
    assert 'id="client-name">Library kiosk<' in body
    assert 'id="binding-message">W4SCT<' in body
    assert "<code>openid</code>" in body and "<code>email</code>" in body
    assert 'id="accept"' in body and 'id="deny"' in body


def test_accept_gives_tokens(http, kiosk, request_link):
    req, path = request_link
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    page = sign_in(http, path)
    done = http.post(path, data={"action": "accept", "csrf_token": csrf(page)})
    assert done.status_code == 200
    assert "Request approved" in text(done)
    tokens = poll(http, kiosk, req)
    assert tokens.status_code == 200, tokens.json
    assert tokens.json["scope"] == "openid email"


def test_deny_gives_access_denied(http, kiosk, request_link):
    req, path = request_link
    page = sign_in(http, path)
    done = http.post(path, data={"action": "deny", "csrf_token": csrf(page)})
    assert "Request denied" in text(done)
    assert_error(poll(http, kiosk, req), 400, "access_denied")


@pytest.mark.parametrize("action", ["accept", "deny", "sign_in"])
@pytest.mark.parametrize("token", [None, "forged-token"], ids=["missing", "wrong"])
def test_csrf_is_enforced(http, kiosk, request_link, action, token):
    req, path = request_link
    page = sign_in(http, path)
    assert csrf(page)
    data = {"action": action, "username": "alice", "password": "alice-password"}
    if token:
        data["csrf_token"] = token
    assert http.post(path, data=data).status_code == 400
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_decision_needs_sign_in(http, kiosk, request_link):
    req, path = request_link
    page = http.get(path)
    response = http.post(path, data={"action": "accept", "csrf_token": csrf(page)})
    assert "Sign in to review" in text(response)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_wrong_password(http, request_link):
    _, path = request_link
    page = sign_in(http, path, password="not-it")
    assert page.status_code == 401
    assert "do not match" in text(page)
    assert 'id="accept"' not in text(page)


def test_another_user_cannot_decide(http, kiosk, provider, request_link):
    req, path = request_link
    add_user(provider, "bob", "bob-password")
    page = sign_in(http, path, username="bob", password="bob-password")
    assert page.status_code == 403
    assert "Not your request" in text(page)
    assert 'id="accept"' not in text(page)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_expired_request_says_expired(http, kiosk, request_link, clock):
    req, path = request_link
    page = sign_in(http, path)
    clock.advance(301)
    assert "This request has expired" in text(http.get(path))
    late = http.post(path, data={"action": "accept", "csrf_token": csrf(page)})
    assert "This request has expired" in text(late)
    assert_error(poll(http, kiosk, req), 400, "expired_token")


def test_expired_before_sign_in(http, request_link, clock):
    _, path = request_link
    clock.advance(301)
    page = http.get(path)
    assert "This request has expired" in text(page)
    assert 'name="password"' not in text(page)


@pytest.mark.parametrize("approve, shown", [(True, "Request approved"), (False, "Request denied")])
def test_already_decided_says_so(http, kiosk, provider, request_link, approve, shown):
    req, path = request_link
    page = sign_in(http, path)
    decide_request(provider, req, approve=approve)  # decided elsewhere meanwhile
    again = http.post(path, data={"action": "accept" if not approve else "deny",
                                  "csrf_token": csrf(page)})
    assert shown in text(again)
    assert 'id="accept"' not in text(again)
    assert shown in text(http.get(path))


def test_page_after_tokens_were_fetched(http, kiosk, provider, request_link):
    req, path = request_link
    decide_request(provider, req)
    assert poll(http, kiosk, req).status_code == 200
    assert "Request approved" in text(http.get(path))


def test_unknown_link(http):
    page = http.get("/approve/not-a-real-token")
    assert page.status_code == 404
    assert "Link not valid" in text(page)


def test_client_name_is_escaped(http, alice, make_client, provider):
    evil = make_client("evil", name="<script>alert(1)</script>")
    auth_req_id(http, evil)
    path = provider.console.last_links["alice"].removeprefix(ISSUER)
    body = text(sign_in(http, path))
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_a_cancelled_request_says_so_and_cannot_be_accepted(http, request_link, provider):
    from server.oauth.decisions import cancel
    from server.oauth import request_ids
    from server.storage import ciba_requests

    req, path = request_link
    page = sign_in(http, path)
    with provider.db.session() as s:
        rid = ciba_requests.by_auth_req_id_hash(s, request_ids.key(req)).id
    cancel(provider, rid, "client")
    answer = http.post(path, data={"action": "accept", "csrf_token": csrf(page)})
    assert 'id="state">Request cancelled<' in text(answer)
    assert "Library kiosk no longer needs this sign-in" in text(answer)
