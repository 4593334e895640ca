"""The operators' console over HTTP (the browser tests in tests/server/browser/ drive it in
Chromium): who may enter, CSRF on every change, every client field the CLI knows is editable,
changes of authentication method, and the operations shared with the CLI."""

from __future__ import annotations

import re

import pytest

from server.admin import AdminError, add_user
from server.admin_clients import get_spec, update_client
from server.admin_users import set_admin
from server.web.client_form import FIELDS

from .ciba_helpers import assert_error, auth_req_id, public_jwks, rsa_client_key

GET_PAGES = ["/admin/", "/admin/clients/", "/admin/clients/new", "/admin/clients/kiosk",
             "/admin/users/", "/admin/users/new", "/admin/users/alice", "/admin/requests/",
             "/admin/audit/", "/admin/registration/", "/admin/deliveries"]
POSTS = ["/admin/clients/new", "/admin/clients/kiosk", "/admin/clients/kiosk/rotate-secret",
         "/admin/clients/kiosk/remove", "/admin/users/new", "/admin/users/alice/disable",
         "/admin/users/alice/devices/enroll", "/admin/requests/x/cancel", "/admin/registration/",
         "/admin/keys/rotate"]


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def signed_in(app, username: str, password: str):
    client = app.test_client()
    page = client.get("/account/login")
    r = client.post("/account/login", data={"username": username, "password": password,
                                            "csrf_token": csrf(page)})
    assert r.status_code == 302
    return client


@pytest.fixture
def operator(app, provider, alice, kiosk):
    add_user(provider, "olga", "olga-password", is_admin=True)
    return signed_in(app, "olga", "olga-password")


@pytest.mark.parametrize("path", GET_PAGES)
def test_every_page_is_for_operators_only(app, http, alice, kiosk, operator, path):
    assert http.get(path).status_code == 302  # to the sign-in page
    assert signed_in(app, "alice", "alice-password").get(path).status_code == 403
    r = operator.get(path)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", POSTS)
def test_every_change_needs_the_csrf_token(operator, provider, path):
    assert operator.post(path, data={}).status_code == 400
    assert operator.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert provider.get_client("kiosk") is not None


VALUES = {
    "name": ("Library kiosk 2", "client_name", "Library kiosk 2"),
    "client_uri": ("https://library.example", "client_uri", "https://library.example"),
    "logo_uri": ("https://library.example/logo.png", "logo_uri", "https://library.example/logo.png"),
    "auth_method": ("client_secret_post", "token_endpoint_auth_method", "client_secret_post"),
    "grant_types": (["urn:openid:params:grant-type:ciba"], "grant_types",
                    ["urn:openid:params:grant-type:ciba"]),
    "scope": (["openid", "email"], "scope", "openid email"),
    "delivery_mode": ("ping", "backchannel_token_delivery_mode", "ping"),
    "notification_endpoint": ("https://library.example/cb",
                              "backchannel_client_notification_endpoint",
                              "https://library.example/cb"),
    "polling_interval": ("7", "polling_interval", 7),
    "ciba_lifetime": ("90", "ciba_lifetime", 90),
    "user_code_required": ("on", "backchannel_user_code_parameter", True),
    "id_token_signed_response_alg": ("ES256", "id_token_signed_response_alg", "ES256"),
}


def form_of(page) -> dict:
    """The form as the browser would post it: every input, select and checked box."""
    html = page.get_data(as_text=True)
    data: dict = {"csrf_token": csrf(page)}
    for name, value in re.findall(r'<input name="(\w+)" id="in-\w+" value="([^"]*)"', html):
        data[name] = value
    for name, body in re.findall(r'<select name="(\w+)" id="in-\w+">(.*?)</select>', html):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        data[name] = chosen.group(1) if chosen else ""
    for name, value in re.findall(r'<input type="checkbox" name="(\w+)" value="([^"]+)" checked>',
                                  html):
        data.setdefault(name, []).append(value)
    return data


#: Issue 10's fields: they change how the client authenticates (test below).
SECURITY = {"tls_subject_dn", "tls_san_dns", "tls_san_uri", "tls_san_ip", "tls_san_email",
            "bound_tokens", "request_signing_alg", "fapi"}


def test_every_client_field_is_editable(operator, provider):
    assert {f.name for f in FIELDS} - {"client_id", "jwks", "jwks_uri"} - SECURITY == set(VALUES)
    data = form_of(operator.get("/admin/clients/kiosk"))
    for name, (value, _, _) in VALUES.items():
        data[name] = value
    r = operator.post("/admin/clients/kiosk", data=data)
    assert r.status_code == 200, r.get_data(as_text=True)
    metadata = provider.get_client("kiosk").metadata()
    for name, (_, key, expected) in VALUES.items():
        assert metadata[key] == expected, name
    # the form shows what was saved
    again = form_of(operator.get("/admin/clients/kiosk"))
    assert again["name"] == "Library kiosk 2" and again["polling_interval"] == "7"
    assert again["scope"] == ["openid", "email"]


def test_the_security_profile_fields_are_editable(operator, provider):
    """Mutual TLS, bound tokens, signed requests and FAPI-CIBA from the form, checked by the same
    rules as ``clients add`` (admin.validate)."""
    import json

    data = form_of(operator.get("/admin/clients/kiosk"))
    data.update(auth_method="tls_client_auth", tls_subject_dn="", bound_tokens="")
    r = operator.post("/admin/clients/kiosk", data=data)
    assert r.status_code == 400
    assert "exactly one of --tls-subject-dn" in r.get_data(as_text=True)
    data.update(tls_subject_dn="CN=kiosk,O=Example", request_signing_alg="PS256", fapi="on",
                jwks=json.dumps(public_jwks(rsa_client_key())))
    r = operator.post("/admin/clients/kiosk", data=data)
    assert r.status_code == 200, r.get_data(as_text=True)
    metadata = provider.get_client("kiosk").metadata()
    assert metadata["token_endpoint_auth_method"] == "tls_client_auth"
    assert metadata["tls_client_auth_subject_dn"] == "CN=kiosk,O=Example"
    assert metadata["backchannel_authentication_request_signing_alg"] == "PS256"
    assert metadata["tls_client_certificate_bound_access_tokens"] is True  # the default
    assert metadata["fapi_ciba"] is True and metadata["id_token_signed_response_alg"] == "PS256"
    assert provider.get_client("kiosk").row.secret_hash is None  # a certificate, no secret
    again = form_of(operator.get("/admin/clients/kiosk"))
    assert again["tls_subject_dn"] == "CN=kiosk,O=Example" and again["bound_tokens"] == "yes"
    assert 'id="rotate-secret"' not in operator.get("/admin/clients/kiosk").get_data(as_text=True)
    again.update(fapi="", bound_tokens="no", request_signing_alg="")
    again.pop("fapi")
    r = operator.post("/admin/clients/kiosk", data=again)
    assert r.status_code == 200, r.get_data(as_text=True)
    row = provider.get_client("kiosk").row
    assert not row.fapi_ciba and not row.tls_client_certificate_bound_access_tokens


@pytest.mark.parametrize("change, message", [
    ({"client_id": ""}, "Client ID: required"),
    ({"client_id": "has space"}, "Client ID: use letters"),
    ({"client_id": "kiosk"}, "already exists"),
    ({"polling_interval": "soon"}, "whole number"),
    ({"jwks": "{not json"}, "not valid JSON"),
    ({"auth_method": "private_key_jwt"}, "needs"),
    ({"grant_types": []}, "choose at least one"),
    ({"scope": ["profile"]}, "openid scope"),
    ({"delivery_mode": "push"}, "notification"),
    ({"notification_endpoint": "http://example.com/cb", "delivery_mode": "ping"}, "https"),
])
def test_form_errors_are_shown_with_what_was_typed(operator, change, message):
    data = form_of(operator.get("/admin/clients/new"))
    data.update({"client_id": "new-one", "name": "Typed name", **change})
    r = operator.post("/admin/clients/new", data=data)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert message in re.search(r'id="form-error">([^<]*)<', html).group(1)
    assert 'value="Typed name"' in html


def test_a_new_client_secret_is_shown_once(operator, provider, http, alice):
    data = form_of(operator.get("/admin/clients/new"))
    data.update({"client_id": "desk", "name": "Desk"})
    html = operator.post("/admin/clients/new", data=data).get_data(as_text=True)
    secret = re.search(r'id="client-secret">([^<]+)<', html).group(1)
    assert len(secret) >= 43 and secret not in operator.get("/admin/clients/desk").get_data(
        as_text=True)
    import base64
    basic = {"Authorization": "Basic " + base64.b64encode(f"desk:{secret}".encode()).decode()}
    assert http.post("/bc-authorize", headers=basic,
                     data={"scope": "openid", "login_hint": "alice"}).status_code == 200


def test_changing_the_authentication_method(provider, kiosk, http, alice):
    spec = get_spec(provider, "kiosk")
    spec.auth_method, spec.jwks = "private_key_jwt", public_jwks(rsa_client_key())
    metadata, secret = update_client(provider, spec, actor="operator:olga")
    assert secret is None and metadata["token_endpoint_auth_method"] == "private_key_jwt"
    r = http.post("/bc-authorize", headers=kiosk.basic(),
                  data={"scope": "openid", "login_hint": "alice"})
    assert_error(r, 401, "invalid_client")  # the old secret is gone
    spec.auth_method, spec.jwks = "client_secret_jwt", None
    metadata, secret = update_client(provider, spec, actor="operator:olga")
    assert secret and provider.get_client("kiosk").shared_secret_key() is not None
    with pytest.raises(AdminError, match="no client"):
        spec.client_id = "ghost"
        update_client(provider, spec)


def test_removing_a_client_takes_its_requests(operator, provider, http, alice, kiosk):
    auth_req_id(http, kiosk)
    page = operator.get("/admin/clients/kiosk")
    r = operator.post("/admin/clients/kiosk/remove", data={"csrf_token": csrf(page)})
    assert r.status_code == 302
    assert provider.get_client("kiosk") is None
    assert 'id="no-requests"' in operator.get("/admin/requests/").get_data(as_text=True)


def test_users_can_be_created_and_changed(operator, provider, app):
    page = operator.get("/admin/users/new")
    r = operator.post("/admin/users/new", data={"csrf_token": csrf(page), "username": "bob",
                                                "password": "short", "name": "Bob"})
    assert r.status_code == 400 and "at least 8" in r.get_data(as_text=True)
    r = operator.post("/admin/users/new", data={"csrf_token": csrf(page), "username": "bob",
                                                "password": "bob-password-1", "name": "Bob",
                                                "email": "bob@example.com", "is_admin": "on"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/users/bob")
    token = {"csrf_token": csrf(page)}
    operator.post("/admin/users/bob/profile", data={**token, "name": "Robert",
                                                    "email": "alice@example.com"})
    html = operator.get("/admin/users/bob").get_data(as_text=True)
    assert "another user has the email" in html
    operator.post("/admin/users/bob/password", data={**token, "password": "new-bob-password"})
    signed_in(app, "bob", "new-bob-password")
    operator.post("/admin/users/bob/operator", data=token)
    with provider.db.session() as s:
        from server.storage import users
        bob = users.by_username(s, "bob")
        assert not bob.is_admin and bob.name == "Bob"
    assert operator.post("/admin/users/bob/fly", data=token).status_code == 404
    assert operator.get("/admin/users/nobody").status_code == 404


def test_operators_cannot_lock_themselves_out(operator, provider):
    token = {"csrf_token": csrf(operator.get("/admin/"))}
    r = operator.post("/admin/users/olga/disable", data=token, follow_redirects=True)
    assert "cannot disable your own account" in r.get_data(as_text=True)
    r = operator.post("/admin/users/olga/operator", data=token, follow_redirects=True)
    assert "cannot take your own operator flag" in r.get_data(as_text=True)
    assert operator.get("/admin/").status_code == 200


def test_signing_keys_rotate_from_the_console(operator, provider):
    before = {k["kid"] for k in provider.keys.jwks()["keys"]}
    page = operator.get("/admin/")
    operator.post("/admin/keys/rotate", data={"csrf_token": csrf(page), "publish_ahead": "60"})
    after = {k["kid"] for k in provider.keys.jwks()["keys"]}
    assert before < after
    assert "Signing keys rotated" in operator.get("/admin/audit/").get_data(as_text=True)


def test_the_cli_and_console_share_one_rule(provider, alice):
    """An operator flag set through the CLI's function shows in the console's audit."""
    set_admin(provider, "alice", True)
    with provider.db.session() as s:
        from server.storage import audit as audit_repo
        row = audit_repo.newest(s, audit_repo.AuditFilter(event="user_updated"))[0]
    assert row.actor.startswith("cli")


def test_disabling_a_user_ends_their_tokens_and_requests(provider, http, alice, kiosk):
    from server.admin_users import set_disabled

    from .ciba_helpers import decide_request, poll

    approved = auth_req_id(http, kiosk, scope="openid offline_access")
    decide_request(provider, approved)
    tokens = poll(http, kiosk, approved).json
    pending = auth_req_id(http, kiosk)
    set_disabled(provider, "alice", True, actor="operator:olga")
    assert_error(poll(http, kiosk, pending), 400, "access_denied")
    for token in (tokens["access_token"], tokens["refresh_token"]):
        r = http.post("/introspect", data={"token": token}, headers=kiosk.basic())
        assert r.json == {"active": False}
    with provider.db.session() as s:
        from server.storage import audit as audit_repo
        row = audit_repo.newest(s, audit_repo.AuditFilter(event="user_updated"))[0]
    assert '"tokens_revoked":1' in row.detail
