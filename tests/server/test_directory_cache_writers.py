"""Every write path that issues 10, 11 and 13 added to users, clients and devices empties the
other processes' caches (storage/directory.py) at once, as a client of another process sees it:
the operators' console, dynamic client registration (RFC 7591/7592), and the argon2id rehash of
an old password or client secret hash on a successful sign-in or client authentication.

The ``app`` fixture is one process, where the change is made over HTTP; ``other`` is a second
app on the same instance folder (its own Provider, its own caches), filled before the change.
"""

from __future__ import annotations

import re

import pytest

from server import create_app
from server.registration import issue_initial_token
from server.storage import clients as client_repo, users as user_repo

from .ciba_helpers import assert_error, auth_req_id, bc_authorize, poll
from .devices.helpers import DeviceKey
from .test_console import csrf, form_of, operator  # noqa: F401  (fixture)
from .test_password_hashing import old_scrypt_hash, sign_in
from .test_registration import POLL, Creds, manage, register


@pytest.fixture
def other(settings, clock):
    """Another process: its own provider and caches on the same database."""
    app = create_app(settings, clock=clock)
    yield app.extensions["ciba"], app.test_client()
    app.extensions["ciba"].db.dispose()


# -- the console (an operator signed in over HTTP) -------------------------------------------------
def test_console_client_changes_reach_the_other_process(operator, other, alice, kiosk):
    b, b_http = other
    assert b.get_client("desk") is None  # a cached miss
    assert b.get_client("kiosk").name == "Library kiosk"  # cached
    data = form_of(operator.get("/admin/clients/new"))
    data.update(client_id="desk", name="Desk")
    html = operator.post("/admin/clients/new", data=data).get_data(as_text=True)
    desk_secret = re.search(r'id="client-secret">([^<]+)<', html).group(1)
    assert b.get_client("desk").name == "Desk"

    data = form_of(operator.get("/admin/clients/kiosk"))
    data["name"] = "Front desk kiosk"
    assert operator.post("/admin/clients/kiosk", data=data).status_code == 200
    assert b.get_client("kiosk").name == "Front desk kiosk"

    assert bc_authorize(b_http, kiosk).status_code == 200  # the old secret, from b's cache
    page = operator.get("/admin/clients/kiosk")
    html = operator.post("/admin/clients/kiosk/rotate-secret",
                         data={"csrf_token": csrf(page)}).get_data(as_text=True)
    new_secret = re.search(r'id="client-secret">([^<]+)<', html).group(1)
    assert_error(bc_authorize(b_http, kiosk), 401, "invalid_client")
    kiosk.secret = new_secret
    assert bc_authorize(b_http, kiosk).status_code == 200

    operator.post("/admin/clients/desk/remove", data={"csrf_token": csrf(page)})
    assert b.get_client("desk") is None and desk_secret


def test_console_user_changes_reach_the_other_process(operator, other, alice, kiosk):
    b, b_http = other
    token = {"csrf_token": csrf(operator.get("/admin/"))}
    assert_error(bc_authorize(b_http, kiosk, login_hint="bob"), 400, "unknown_user_id")
    operator.post("/admin/users/new", data={**token, "username": "bob", "name": "Bob",
                                            "password": "bob-password-1"})
    assert bc_authorize(b_http, kiosk, login_hint="bob").status_code == 200

    operator.post("/admin/users/bob/profile", data={**token, "name": "Robert", "email": ""})
    assert b.find_user("bob").name == "Robert"
    old_hash = b.find_user("bob").password_hash
    operator.post("/admin/users/bob/password", data={**token, "password": "new-bob-password"})
    assert b.find_user("bob").password_hash != old_hash
    operator.post("/admin/users/bob/operator", data={**token, "is_admin": "on"})
    assert b.find_user("bob").is_admin is True
    operator.post("/admin/users/bob/mode", data={**token, "mode": "console"})
    assert b.find_user("bob").notification_mode == "console"

    # Disabling ends her requests and tokens, and the other process refuses her at once.
    pending = auth_req_id(b_http, kiosk)
    operator.post("/admin/users/alice/disable", data=token)
    assert b.find_user("alice").disabled is True
    assert_error(bc_authorize(b_http, kiosk), 403, "access_denied")
    assert_error(poll(b_http, kiosk, pending), 400, "access_denied")
    operator.post("/admin/users/alice/enable", data=token)
    assert bc_authorize(b_http, kiosk).status_code == 200


def test_console_device_enrollment_and_revocation_reach_the_other_process(
        operator, other, provider, alice):
    b, _ = other
    assert b.channel_mode_for(b.find_user("alice")) == "console"  # no device: cached
    token = {"csrf_token": csrf(operator.get("/admin/"))}
    html = operator.post("/admin/users/alice/devices/enroll", data=token).get_data(as_text=True)
    code = re.search(r"code=([\w-]+)", html).group(1)
    device = DeviceKey("http://op.test")
    device.enrolled(provider.devices.enroll(device.enroll_body(code), "test"))
    assert b.channel_mode_for(b.find_user("alice")) == "websocket"
    assert b.directory.device(device.device_id).revoked_at is None
    r = operator.post(f"/admin/users/alice/devices/{device.device_id}/revoke", data=token)
    assert r.status_code == 302
    assert b.directory.device(device.device_id).revoked_at is not None
    assert b.channel_mode_for(b.find_user("alice")) == "console"


# -- dynamic client registration (RFC 7591, RFC 7592) -------------------------------------------
def test_registration_updates_and_deletes_reach_the_other_process(http, provider, other, alice):
    b, b_http = other
    initial = issue_initial_token(provider, "tests", 3600, False, "operator:olga")[0]
    answer = register(http, initial, POLL).json
    creds = Creds(answer)
    assert b.get_client(creds.client_id).name == "Self-registered kiosk"
    body = {**POLL, "client_id": creds.client_id, "client_name": "Renamed kiosk",
            "scope": "openid email"}
    r = manage(http, "PUT", answer, body=body)
    assert r.status_code == 200, r.json
    assert b.get_client(creds.client_id).name == "Renamed kiosk"
    # The other process enforces the new scope (CIBA §7.1, RFC 6749 §3.3).
    assert_error(bc_authorize(b_http, creds, scope="openid profile"), 400, "invalid_scope")
    answer["registration_access_token"] = r.json["registration_access_token"]
    assert manage(http, "DELETE", answer).status_code == 204
    assert_error(bc_authorize(b_http, creds), 401, "invalid_client")


# -- argon2id rehash (issue 13) ---------------------------------------------------------------
def test_a_rehashed_client_secret_reaches_the_other_process(http, provider, other, alice, kiosk):
    b, _ = other
    old = old_scrypt_hash(kiosk.secret)
    with provider.db.session() as s:
        client_repo.get(s, "kiosk").secret_hash = old
    assert b.get_client("kiosk").row.secret_hash == old  # cached
    assert bc_authorize(http, kiosk).status_code == 200  # authenticates, rehashes
    assert b.get_client("kiosk").row.secret_hash.startswith("$argon2id$")


def test_a_rehashed_password_reaches_the_other_process(http, provider, other, alice):
    b, _ = other
    old = old_scrypt_hash("alice-password")
    with provider.db.session() as s:
        user_repo.by_username(s, "alice").password_hash = old
    assert b.find_user("alice").password_hash == old  # cached
    assert sign_in(http, "alice", "alice-password").status_code == 302
    assert b.find_user("alice").password_hash.startswith("$argon2id$")
