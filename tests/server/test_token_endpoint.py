"""The token endpoint with the CIBA grant, as a polling client sees it: CIBA Core 1.0 §10.1
(success), §11 (errors), RFC 9068 (JWT access tokens) and OIDC Core §2 (ID token)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from werkzeug.datastructures import MultiDict

from .ciba_helpers import CIBA, assert_error, auth_req_id, decide_request, poll, verify_jwt

ISSUER = "http://op.test"


def introspect(http, creds, token: str) -> dict:
    response = http.post("/introspect", data={"token": token}, headers=creds.basic())
    assert response.status_code == 200, response.json
    return response.json


# -- §11 errors, one test each -----------------------------------------------------------------

def test_authorization_pending(http, alice, kiosk):
    req = auth_req_id(http, kiosk)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_slow_down_then_interval_grows_by_five_seconds(http, alice, kiosk, clock):
    req = auth_req_id(http, kiosk)  # interval 5
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    clock.advance(2)
    assert_error(poll(http, kiosk, req), 400, "slow_down")  # interval is now 10
    clock.advance(6)  # past the old interval, not the new one
    assert_error(poll(http, kiosk, req), 400, "slow_down")  # and now 15
    clock.advance(15)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_after_slow_down_the_new_interval_is_enough(http, alice, kiosk, clock):
    req = auth_req_id(http, kiosk)
    poll(http, kiosk, req)
    clock.advance(1)
    assert_error(poll(http, kiosk, req), 400, "slow_down")
    clock.advance(10)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    clock.advance(10)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_polling_at_the_interval_never_slows_down(http, alice, kiosk, clock):
    req = auth_req_id(http, kiosk)
    for _ in range(4):
        assert_error(poll(http, kiosk, req), 400, "authorization_pending")
        clock.advance(5)


@pytest.mark.parametrize("approved_first", [False, True], ids=["pending", "approved-too-late"])
def test_expired_token(http, alice, kiosk, clock, provider, approved_first):
    req = auth_req_id(http, kiosk, requested_expiry="60")
    if approved_first:
        decide_request(provider, req)
    clock.advance(61)
    assert_error(poll(http, kiosk, req), 400, "expired_token")


def test_decision_after_expiry_is_refused(http, alice, kiosk, clock, provider):
    req = auth_req_id(http, kiosk, requested_expiry="60")
    clock.advance(60)
    assert decide_request(provider, req).value == "expired"
    assert_error(poll(http, kiosk, req), 400, "expired_token")


def test_access_denied_after_deny(http, alice, kiosk, provider):
    req = auth_req_id(http, kiosk)
    decide_request(provider, req, approve=False)
    assert_error(poll(http, kiosk, req), 400, "access_denied")


def test_invalid_grant_unknown_auth_req_id(http, alice, kiosk):
    assert_error(poll(http, kiosk, "bm90LWFuLWF1dGgtcmVxLWlk"), 400, "invalid_grant")


def test_invalid_grant_for_another_clients_auth_req_id(http, alice, kiosk, make_client, provider):
    other = make_client("teller")
    req = auth_req_id(http, kiosk)
    decide_request(provider, req)
    assert_error(poll(http, other, req), 400, "invalid_grant")
    # the rightful client is not harmed by the attempt
    assert poll(http, kiosk, req).status_code == 200


def test_replayed_auth_req_id_is_refused_and_revokes_its_tokens(http, alice, kiosk, provider):
    req = auth_req_id(http, kiosk, scope="openid offline_access")
    decide_request(provider, req)
    first = poll(http, kiosk, req)
    assert first.status_code == 200
    tokens = first.json
    assert introspect(http, kiosk, tokens["access_token"])["active"] is True
    assert_error(poll(http, kiosk, req), 400, "invalid_grant")
    assert introspect(http, kiosk, tokens["access_token"]) == {"active": False}
    assert introspect(http, kiosk, tokens["refresh_token"]) == {"active": False}
    refreshed = http.post("/token", data={"grant_type": "refresh_token",
                                          "refresh_token": tokens["refresh_token"]},
                          headers=kiosk.basic())
    assert_error(refreshed, 400, "invalid_grant")


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "urn:example:grant"])
def test_unsupported_grant_type(http, alice, kiosk, grant_type):
    response = http.post("/token", data={"grant_type": grant_type, "auth_req_id": "x"},
                         headers=kiosk.basic())
    assert_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize("data", [
    pytest.param({"grant_type": CIBA}, id="missing-auth-req-id"),
    pytest.param({"grant_type": CIBA, "auth_req_id": ""}, id="empty-auth-req-id"),
    pytest.param({"auth_req_id": "abc"}, id="missing-grant-type"),
])
def test_invalid_request(http, alice, kiosk, data):
    response = http.post("/token", data=data, headers=kiosk.basic())
    assert_error(response, 400, "invalid_request")


def test_invalid_request_repeated_parameter(http, alice, kiosk):
    req = auth_req_id(http, kiosk)
    data = MultiDict([("grant_type", CIBA), ("auth_req_id", req), ("auth_req_id", req)])
    assert_error(http.post("/token", data=data, headers=kiosk.basic()), 400, "invalid_request")


def test_invalid_request_json_body(http, alice, kiosk):
    req = auth_req_id(http, kiosk)
    response = http.post("/token", data=json.dumps({"grant_type": CIBA, "auth_req_id": req}),
                         headers={**kiosk.basic(), "Content-Type": "application/json"})
    assert_error(response, 400, "invalid_request")


def test_unauthorized_client(http, alice, make_client):
    machine = make_client("machine", grant_types=["client_credentials"])
    assert_error(poll(http, machine, "whatever"), 400, "unauthorized_client")


def test_invalid_client(http, alice, kiosk):
    req = auth_req_id(http, kiosk)
    wrong = {"Authorization": "Basic " + base64.b64encode(b"kiosk:wrong").decode()}
    assert_error(poll(http, kiosk, req, headers=wrong), 401, "invalid_client")
    assert_error(poll(http, kiosk, req, headers={}), 401, "invalid_client")


# -- §10.1 success -----------------------------------------------------------------------------

def _tokens(http, creds, provider, **params) -> dict:
    req = auth_req_id(http, creds, **params)
    decide_request(provider, req)
    response = poll(http, creds, req)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    return response.json


def test_token_response(http, alice, kiosk, provider, clock):
    body = _tokens(http, kiosk, provider, scope="openid profile")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert "refresh_token" not in body  # no offline_access
    assert body["scope"] == "openid profile"
    jwks = http.get("/jwks").json

    access = verify_jwt(body["access_token"], jwks, ["ES256"])
    assert access.header["alg"] == "ES256"  # the default (docs/performance.md "Access tokens")
    assert access.header["typ"] == "at+jwt"  # RFC 9068 §2.1
    assert access.header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = access.claims
    now = int(clock.now())
    assert claims["iss"] == ISSUER
    assert claims["sub"] == alice.id
    assert claims["client_id"] == "kiosk"
    assert claims["aud"]
    assert claims["scope"] == "openid profile"
    assert claims["iat"] == now and claims["exp"] == now + 600
    assert claims["jti"]
    assert claims["auth_time"] == now

    id_token = verify_jwt(body["id_token"], jwks, ["RS256"])
    assert id_token.header["alg"] == "RS256"
    c = id_token.claims
    assert c["iss"] == ISSUER and c["sub"] == alice.id and c["aud"] == "kiosk"
    assert c["exp"] > now and c["iat"] == now and c["auth_time"] == now
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert c["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_id_token_algorithm_per_client(http, alice, make_client, provider, alg):
    client = make_client("signed", id_token_signed_response_alg=alg)
    body = _tokens(http, client, provider)
    id_token = verify_jwt(body["id_token"], http.get("/jwks").json, [alg])
    assert id_token.header["alg"] == alg
    assert id_token.claims["aud"] == "signed"


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_access_token_algorithm_setting(http, alice, kiosk, provider, settings, alg):
    """CIBA_ACCESS_TOKEN_SIGNING_ALG: RFC 9068 §2.1 makes RS256 mandatory to support; an
    operator whose resource servers only take RS256 sets it, and the token is verifiable from
    the JWKS and accepted by the provider's own checks (userinfo)."""
    settings.access_token_signing_alg = alg
    body = _tokens(http, kiosk, provider)
    access = verify_jwt(body["access_token"], http.get("/jwks").json, [alg])
    assert access.header["alg"] == alg and access.header["typ"] == "at+jwt"
    assert verify_jwt(body["id_token"], http.get("/jwks").json, ["RS256"]).claims["sub"] == alice.id
    userinfo = http.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert userinfo.status_code == 200 and userinfo.json["sub"] == alice.id


def test_refresh_token_only_with_offline_access(http, alice, kiosk, provider):
    assert "refresh_token" in _tokens(http, kiosk, provider, scope="openid offline_access")
    assert "refresh_token" not in _tokens(http, kiosk, provider, scope="openid email")


def test_acr_values_are_kept(http, alice, kiosk, provider):
    body = _tokens(http, kiosk, provider, acr_values="urn:example:loa:2 urn:example:loa:1")
    jwks = http.get("/jwks").json
    assert verify_jwt(body["id_token"], jwks, ["RS256"]).claims["acr"] == "urn:example:loa:2"


def test_pending_poll_after_approval_gives_tokens_once(http, alice, kiosk, provider, clock):
    req = auth_req_id(http, kiosk)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    decide_request(provider, req)
    clock.advance(5)
    assert poll(http, kiosk, req).status_code == 200
    clock.advance(5)
    assert_error(poll(http, kiosk, req), 400, "invalid_grant")


def test_no_refresh_token_for_a_client_without_the_refresh_token_grant(http, provider, alice,
                                                                        make_client):
    creds = make_client("once", grant_types=["urn:openid:params:grant-type:ciba"])
    req_id = auth_req_id(http, creds, scope="openid offline_access")
    decide_request(provider, req_id, approve=True)
    body = poll(http, creds, req_id).json
    assert "access_token" in body and "refresh_token" not in body


def test_access_token_ids_are_unique_and_time_ordered(http, alice, kiosk, provider):
    """Each jti is unique (RFC 7519 §4.1.7) with 160 random bits after the time (in ns), and
    later tokens' jtis and records sort after earlier ones: their unique indexes grow at the
    right edge (docs/performance.md, round 6 of full flows)."""
    from server.storage.models import Token

    jwks = http.get("/jwks").json
    jtis = [verify_jwt(_tokens(http, kiosk, provider)["access_token"], jwks,
                       ["ES256"]).claims["jti"] for _ in range(3)]
    assert len(set(jtis)) == 3 and jtis == sorted(jtis)
    for jti in jtis:
        random_part = jti[16:]
        assert int(jti[:16], 16) > 0 and len(base64.urlsafe_b64decode(random_part + "=")) == 20
    with provider.db.session() as s:
        records = sorted(s.query(Token).all(), key=lambda r: r.access_jti)
    assert [r.access_jti for r in records] == jtis
    assert [r.id for r in records] == sorted(r.id for r in records)
