"""GotifyAdmin against the spec-built fake Gotify server (real HTTP on 127.0.0.1)."""
from __future__ import annotations

import logging
import threading
import time

import pytest
import requests

from server.notify.gotify import GotifyAdmin, GotifyError
from tests.support.gotify_server import GotifyServer

EXTRAS = {"ciba::login_request": {"request_id": "r-1", "binding_message": "LIB-4 7F3K"}}


@pytest.fixture
def gotify():
    with GotifyServer(admin_user="root", admin_password="s3cret-admin") as server:
        yield server


@pytest.fixture
def admin(gotify):
    return GotifyAdmin(gotify.url, "root", "s3cret-admin", backoff=0.01)


@pytest.fixture
def alice(admin):
    """alice's Gotify user and application, as the provider sets them up."""
    admin.ensure_user("alice", "alice-pw")
    app_id, app_token = admin.create_application("alice", "alice-pw", "CIBA login",
                                                 "Login requests")
    return {"app_id": app_id, "app_token": app_token}


def test_ensure_user_creates_the_user_once(admin, gotify):
    first = admin.ensure_user("alice", "alice-pw")
    assert admin.ensure_user("alice", "alice-pw") == first
    assert [u["name"] for u in gotify.users.values()] == ["root", "alice"]
    created = gotify.requests_to("POST", "/user")
    assert [r["json"] for r in created] == [{"name": "alice", "pass": "alice-pw",
                                            "admin": False}]
    assert gotify.violations == []


def test_ensure_user_resets_the_password_of_an_existing_user(admin, gotify):
    user = gotify.add_user("alice", "forgotten")
    assert admin.ensure_user("alice", "new-pw") == user["id"]
    assert requests.get(f"{gotify.url}/application", auth=("alice", "new-pw")).ok
    assert gotify.violations == []


def test_ensure_user_refuses_the_admin_account(admin):
    with pytest.raises(ValueError):
        admin.ensure_user("root", "whatever")


def test_create_application_and_client(admin, gotify, alice):
    app = gotify.apps[alice["app_id"]]
    assert (app["token"], app["name"], app["description"]) == (
        alice["app_token"], "CIBA login", "Login requests")
    client_id, client_token = admin.create_client("alice", "alice-pw", "Alice's phone")
    assert gotify.clients[client_id]["token"] == client_token
    assert requests.get(f"{gotify.url}/message",
                        headers={"X-Gotify-Key": client_token}).status_code == 200
    assert gotify.violations == []


def test_post_message_sends_a_spec_valid_body_with_extras(admin, gotify, alice):
    message_id = admin.post_message(alice["app_token"], "Login request", "LIB-4 7F3K", EXTRAS)
    (seen,) = gotify.requests_to("POST", "/message")
    assert seen["headers"]["X-Gotify-Key"] == alice["app_token"]
    assert seen["query"] == {}  # the token is never in the URL
    assert seen["json"] == {"title": "Login request", "message": "LIB-4 7F3K", "priority": 8,
                            "extras": EXTRAS}
    assert gotify.messages[message_id]["extras"] == EXTRAS
    assert gotify.violations == []


def test_delete_client(admin, gotify, alice):
    client_id, _ = admin.create_client("alice", "alice-pw", "Alice's phone")
    assert admin.delete_client("alice", "alice-pw", client_id) is True
    assert client_id not in gotify.clients
    assert admin.delete_client("alice", "alice-pw", client_id) is False
    assert gotify.violations == []


@pytest.mark.parametrize("call, status, description", [
    (lambda g: GotifyAdmin(g.url, "root", "wrong").ensure_user("bob", "pw"), 401,
     "you need to provide a valid access token or user credentials to access this api"),
    (lambda g: GotifyAdmin(g.url, "root", "s3cret-admin").create_client("bob", "pw", "x"), 401,
     "you need to provide a valid access token or user credentials to access this api"),
    (lambda g: GotifyAdmin(g.url, "root", "s3cret-admin").post_message("Anope", "t", "m", {}),
     401, "you need to provide a valid access token or user credentials to access this api"),
])
def test_refusals_raise_gotify_error_with_status_and_description(gotify, call, status,
                                                                 description):
    with pytest.raises(GotifyError) as failed:
        call(gotify)
    assert (failed.value.status, failed.value.description) == (status, description)
    assert len(gotify.requests_log) == 1  # a refusal is not retried


def test_non_admin_cannot_manage_users(gotify):
    gotify.add_user("mallory", "pw")
    with pytest.raises(GotifyError) as failed:
        GotifyAdmin(gotify.url, "mallory", "pw").ensure_user("bob", "pw")
    assert failed.value.status == 403


def test_outage_503_is_retried_a_bounded_number_of_times(admin, gotify, alice):
    gotify.go_down("503")
    started = time.monotonic()
    with pytest.raises(GotifyError) as failed:
        admin.post_message(alice["app_token"], "t", "m", EXTRAS)
    assert failed.value.status == 503
    assert len(gotify.requests_to("POST", "/message")) == admin.attempts == 2
    assert time.monotonic() - started < 2


def test_refused_connections_fail_quickly(admin, gotify, alice):
    gotify.go_down()
    started = time.monotonic()
    with pytest.raises(GotifyError) as failed:
        admin.create_client("alice", "alice-pw", "phone")
    assert failed.value.status is None and "unreachable" in str(failed.value)
    assert time.monotonic() - started < 2


def test_a_retry_succeeds_when_the_server_comes_back(admin, gotify, alice):
    gotify.go_down("503")
    admin.backoff = 0.3
    back = threading.Timer(0.1, gotify.come_back)
    back.start()
    assert admin.post_message(alice["app_token"], "t", "m", {}) > 0
    back.join()


def test_secrets_never_reach_logs_or_errors(gotify, alice, caplog):
    caplog.set_level(logging.DEBUG)
    admin = GotifyAdmin(gotify.url, "root", "s3cret-admin", backoff=0.01)
    gotify.go_down("503")
    with pytest.raises(GotifyError) as failed:
        admin.post_message(alice["app_token"], "t", "m", {})
    with pytest.raises(GotifyError) as failed_user:
        admin.create_application("alice", "alice-pw", "n", "d")
    text = caplog.text + str(failed.value) + str(failed_user.value)
    for secret in (alice["app_token"], "alice-pw", "s3cret-admin"):
        assert secret not in text
