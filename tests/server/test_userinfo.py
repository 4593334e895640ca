"""The UserInfo endpoint (OIDC Core §5.3) with RFC 6750 bearer tokens."""

from __future__ import annotations

import pytest

from server.storage.models import User

from .ciba_helpers import auth_req_id, decide_request, poll


def _tokens(http, creds, provider, scope: str) -> dict:
    req = auth_req_id(http, creds, scope=scope)
    decide_request(provider, req)
    response = poll(http, creds, req)
    assert response.status_code == 200, response.json
    return response.json


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


@pytest.mark.parametrize("scope, expected", [
    ("openid", {"sub"}),
    ("openid profile", {"sub", "name", "preferred_username"}),
    ("openid email", {"sub", "email", "email_verified"}),
    ("openid profile email", {"sub", "name", "preferred_username", "email", "email_verified"}),
])
def test_claims_follow_the_granted_scope(http, alice, kiosk, provider, scope, expected):
    token = _tokens(http, kiosk, provider, scope)["access_token"]
    response = http.get("/userinfo", headers=bearer(token))
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == expected
    assert body["sub"] == alice.id
    if "name" in expected:
        assert body["name"] == "Alice Liddell" and body["preferred_username"] == "alice"
    if "email" in expected:
        assert body["email"] == "alice@example.com"


def test_sub_matches_the_id_token(http, alice, kiosk, provider):
    body = _tokens(http, kiosk, provider, "openid")
    from .ciba_helpers import verify_jwt
    id_sub = verify_jwt(body["id_token"], http.get("/jwks").json, ["RS256"]).claims["sub"]
    assert http.get("/userinfo", headers=bearer(body["access_token"])).json["sub"] == id_sub


def test_post_with_form_token(http, alice, kiosk, provider):
    token = _tokens(http, kiosk, provider, "openid")["access_token"]
    response = http.post("/userinfo", data={"access_token": token})
    assert response.status_code == 200
    assert response.json["sub"] == alice.id


def test_post_with_bearer_header(http, alice, kiosk, provider):
    token = _tokens(http, kiosk, provider, "openid")["access_token"]
    assert http.post("/userinfo", headers=bearer(token)).status_code == 200


def test_no_token(http):
    response = http.get("/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def _invalid(response) -> None:
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json["error"] == "invalid_token"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "Bearer"])
def test_invalid_token(http, token):
    _invalid(http.get("/userinfo", headers=bearer(token)))


def test_expired_token(http, alice, kiosk, provider, clock):
    token = _tokens(http, kiosk, provider, "openid")["access_token"]
    clock.advance(601)
    _invalid(http.get("/userinfo", headers=bearer(token)))


def test_revoked_token(http, alice, kiosk, provider):
    token = _tokens(http, kiosk, provider, "openid")["access_token"]
    assert http.post("/revoke", headers=kiosk.basic(), data={"token": token}).status_code == 200
    _invalid(http.get("/userinfo", headers=bearer(token)))


def test_id_token_is_not_an_access_token(http, alice, kiosk, provider):
    id_token = _tokens(http, kiosk, provider, "openid")["id_token"]
    _invalid(http.get("/userinfo", headers=bearer(id_token)))


def test_token_without_openid_scope(http, alice, kiosk, provider):
    refresh_token = _tokens(http, kiosk, provider, "openid email offline_access")["refresh_token"]
    narrowed = http.post("/token", headers=kiosk.basic(), data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "scope": "email"})
    assert narrowed.status_code == 200, narrowed.json
    response = http.get("/userinfo", headers=bearer(narrowed.json["access_token"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_disabled_user(http, alice, kiosk, provider):
    body = _tokens(http, kiosk, provider, "openid offline_access")
    with provider.db.session() as s:
        s.get(User, alice.id).disabled = True
    # a disabled account keeps no access through old tokens, nor gets new ones
    _invalid(http.get("/userinfo", headers=bearer(body["access_token"])))
    refreshed = http.post("/token", headers=kiosk.basic(), data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 400
    assert refreshed.json["error"] == "invalid_grant"
