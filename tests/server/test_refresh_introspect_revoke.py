"""Refresh tokens with rotation (RFC 6749 §6, reuse revokes the grant), token introspection
(RFC 7662) and revocation (RFC 7009), as a client and a resource server see them."""

from __future__ import annotations

import pytest

from .ciba_helpers import CIBA, assert_error, auth_req_id, decide_request, poll

ISSUER = "http://op.test"


@pytest.fixture
def tokens(http, alice, kiosk, provider) -> dict:
    """A token response for alice at the kiosk, with offline_access."""
    req = auth_req_id(http, kiosk, scope="openid profile offline_access")
    decide_request(provider, req)
    response = poll(http, kiosk, req)
    assert response.status_code == 200, response.json
    return response.json


def refresh(http, creds, refresh_token: str, **extra):
    return http.post("/token", headers=creds.basic(), data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def introspect(http, creds, token: str, **extra) -> dict:
    response = http.post("/introspect", headers=creds.basic(), data={"token": token, **extra})
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    return response.json


def revoke(http, creds, token: str, **extra):
    return http.post("/revoke", headers=creds.basic(), data={"token": token, **extra})


# -- refresh_token grant -----------------------------------------------------------------------

def test_refresh_rotates(http, kiosk, tokens, clock):
    clock.advance(30)
    response = refresh(http, kiosk, tokens["refresh_token"])
    assert response.status_code == 200, response.json
    new = response.json
    assert new["token_type"] == "Bearer" and new["expires_in"] == 600
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert introspect(http, kiosk, new["refresh_token"])["active"] is True
    assert introspect(http, kiosk, tokens["refresh_token"]) == {"active": False}
    # the access token issued before the refresh stays valid until it expires
    assert introspect(http, kiosk, tokens["access_token"])["active"] is True


def test_refresh_token_reuse_revokes_the_grant(http, kiosk, tokens):
    new = refresh(http, kiosk, tokens["refresh_token"]).json
    assert_error(refresh(http, kiosk, tokens["refresh_token"]), 400, "invalid_grant")
    # everything the grant produced is now dead, the newest tokens included
    assert_error(refresh(http, kiosk, new["refresh_token"]), 400, "invalid_grant")
    for token in (tokens["access_token"], new["access_token"], new["refresh_token"]):
        assert introspect(http, kiosk, token) == {"active": False}


def test_refresh_with_narrower_scope(http, kiosk, tokens):
    response = refresh(http, kiosk, tokens["refresh_token"], scope="openid")
    assert response.status_code == 200, response.json
    assert response.json["scope"].split()[0] == "openid"
    assert "profile" not in response.json["scope"].split()


def test_refresh_with_broader_scope_is_refused_and_keeps_the_token(http, kiosk, tokens):
    assert_error(refresh(http, kiosk, tokens["refresh_token"], scope="openid email"), 400,
                 "invalid_scope")
    # a refused request must not burn the refresh token
    assert refresh(http, kiosk, tokens["refresh_token"]).status_code == 200


def test_refresh_by_another_client(http, kiosk, tokens, make_client):
    thief = make_client("thief")
    assert_error(refresh(http, thief, tokens["refresh_token"]), 400, "invalid_grant")
    assert refresh(http, kiosk, tokens["refresh_token"]).status_code == 200


def test_refresh_token_expires(http, kiosk, tokens, clock):
    clock.advance(14 * 24 * 3600 + 1)
    assert_error(refresh(http, kiosk, tokens["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("data, error", [
    pytest.param({}, "invalid_request", id="missing-refresh-token"),
    pytest.param({"refresh_token": "not-a-token"}, "invalid_grant", id="unknown"),
])
def test_refresh_errors(http, kiosk, data, error):
    response = http.post("/token", headers=kiosk.basic(),
                         data={"grant_type": "refresh_token", **data})
    assert_error(response, 400, error)


def test_refresh_needs_the_refresh_grant(http, alice, make_client, provider):
    ciba_only = make_client("ciba-only", grant_types=[CIBA])
    req = auth_req_id(http, ciba_only, scope="openid offline_access")
    decide_request(provider, req)
    body = poll(http, ciba_only, req).json
    if "refresh_token" in body:
        assert_error(refresh(http, ciba_only, body["refresh_token"]), 400, "unauthorized_client")


# -- introspection (RFC 7662) -------------------------------------------------------------------

def test_introspect_access_token(http, alice, kiosk, tokens, clock):
    body = introspect(http, kiosk, tokens["access_token"])
    assert body["active"] is True
    assert body["client_id"] == "kiosk"
    assert body["sub"] == alice.id
    assert body["iss"] == ISSUER
    assert body["scope"] == "openid profile offline_access"
    assert body["token_type"] == "Bearer"
    assert body["exp"] == int(clock.now()) + 600


def test_introspect_refresh_token(http, alice, kiosk, tokens):
    body = introspect(http, kiosk, tokens["refresh_token"], token_type_hint="refresh_token")
    assert body["active"] is True
    assert body["client_id"] == "kiosk" and body["sub"] == alice.id


@pytest.mark.parametrize("which, hint", [("access_token", "refresh_token"),
                                         ("refresh_token", "access_token")])
def test_introspect_with_a_wrong_hint_still_finds_the_token(http, kiosk, tokens, which, hint):
    # RFC 7662 §2.1: the server SHOULD extend its search when the hint does not match
    assert introspect(http, kiosk, tokens[which], token_type_hint=hint)["active"] is True


def test_introspection_by_a_resource_server(http, kiosk, tokens, make_client):
    api = make_client("resource-api", grant_types=["client_credentials"])
    assert introspect(http, api, tokens["access_token"])["active"] is True


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_introspect_unknown_token(http, kiosk, token):
    assert introspect(http, kiosk, token) == {"active": False}


def test_introspect_expired_access_token(http, kiosk, tokens, clock):
    clock.advance(601)
    assert introspect(http, kiosk, tokens["access_token"]) == {"active": False}


def test_introspection_needs_client_authentication(http, tokens):
    response = http.post("/introspect", data={"token": tokens["access_token"]})
    assert_error(response, 401, "invalid_client")


def test_introspection_needs_a_token(http, kiosk):
    assert_error(http.post("/introspect", headers=kiosk.basic(), data={}), 400,
                 "invalid_request")


# -- revocation (RFC 7009) ----------------------------------------------------------------------

def test_revoke_access_token(http, kiosk, tokens):
    response = revoke(http, kiosk, tokens["access_token"])
    assert response.status_code == 200
    assert introspect(http, kiosk, tokens["access_token"]) == {"active": False}
    userinfo = http.get("/userinfo",
                        headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert userinfo.status_code == 401
    # RFC 7009 §2.1 lets the server revoke the respective refresh token too; this one does
    assert introspect(http, kiosk, tokens["refresh_token"]) == {"active": False}


def test_revoke_refresh_token_revokes_the_grant(http, kiosk, tokens):
    assert revoke(http, kiosk, tokens["refresh_token"],
                  token_type_hint="refresh_token").status_code == 200
    assert_error(refresh(http, kiosk, tokens["refresh_token"]), 400, "invalid_grant")
    assert introspect(http, kiosk, tokens["access_token"]) == {"active": False}


@pytest.mark.parametrize("token", ["unknown-token", "x.y.z"])
def test_revoke_unknown_token_is_ok(http, kiosk, token):
    # RFC 7009 §2.2: invalid tokens do not cause an error response
    assert revoke(http, kiosk, token).status_code == 200


def test_revoke_another_clients_token_is_refused(http, kiosk, tokens, make_client):
    other = make_client("other")
    response = revoke(http, other, tokens["access_token"])
    assert response.status_code in (400, 401, 403)
    assert introspect(http, kiosk, tokens["access_token"])["active"] is True


def test_revoke_unsupported_token_type(http, kiosk, tokens):
    response = revoke(http, kiosk, tokens["access_token"], token_type_hint="id_token")
    assert_error(response, 400, "unsupported_token_type")


def test_revocation_needs_client_authentication(http, tokens):
    assert_error(http.post("/revoke", data={"token": tokens["access_token"]}), 401,
                 "invalid_client")
