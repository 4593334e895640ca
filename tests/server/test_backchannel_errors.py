"""The Backchannel Authentication Endpoint as a client sees it: CIBA Core 1.0 §7.1 (request),
§7.3 (success) and every error code of §13 with its HTTP status."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
from werkzeug.datastructures import MultiDict

from server.storage.models import User

from .ciba_helpers import (
    assert_error, assertion_form, auth_req_id, bc_authorize, client_assertion, poll, public_jwks,
    rsa_client_key,
)

ISSUER = "http://op.test"


# -- success (§7.3) ---------------------------------------------------------------------------

def test_success_response(http, alice, kiosk):
    response = bc_authorize(http, kiosk, binding_message="W4SCT")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    # CIBA §7.3, and this provider's extension (README): alice has no device here.
    assert set(body) == {"auth_req_id", "expires_in", "interval", "ciba_stack_delivery"}
    assert body["ciba_stack_delivery"] == "console"
    # CIBA §7.3: only the characters A-Z a-z 0-9 . - _, and at least 160 bits of entropy: the
    # random part after the time stamp (server/oauth/request_ids.py) has 256.
    assert re.fullmatch(r"[0-9a-f]{16}\.[A-Za-z0-9_-]+", body["auth_req_id"])
    secret = body["auth_req_id"].partition(".")[2]
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    assert len(raw) * 8 >= 160
    assert body["expires_in"] == 300
    assert body["interval"] == 5


def test_auth_req_ids_are_unique(http, alice, kiosk):
    assert len({auth_req_id(http, kiosk) for _ in range(5)}) == 5


@pytest.mark.parametrize("requested_expiry, expires_in", [
    ("120", 120),       # numeric string (form encoding)
    (" 60 ", 60),       # surrounding blanks tolerated
    ("999999", 1800),   # capped by max_requested_expiry
])
def test_requested_expiry_accepted(http, alice, kiosk, requested_expiry, expires_in):
    response = bc_authorize(http, kiosk, requested_expiry=requested_expiry)
    assert response.status_code == 200, response.json
    assert response.json["expires_in"] == expires_in


@pytest.mark.parametrize("hint", ["alice", "alice@example.com", "ALICE@example.com"])
def test_login_hint_is_username_or_email(http, alice, kiosk, hint):
    assert bc_authorize(http, kiosk, login_hint=hint).status_code == 200


def test_client_polling_interval_is_returned(http, alice, make_client):
    slow = make_client("slow", polling_interval=12, ciba_lifetime=90)
    body = bc_authorize(http, slow).json
    assert body["interval"] == 12 and body["expires_in"] == 90


def test_login_hint_token_finds_user(http, alice, make_client):
    key = rsa_client_key()
    client = make_client("pkj", auth_method="private_key_jwt", jwks=public_jwks(key))
    from joserfc import jwt
    now = int(time.time())
    token = jwt.encode({"alg": "RS256", "kid": key.kid},
                       {"sub_id": {"format": "email", "email": "alice@example.com"},
                        "exp": now + 60}, key)
    response = http.post("/bc-authorize", data={
        "scope": "openid", "login_hint_token": token,
        **assertion_form(client_assertion(client.client_id, key, ISSUER))})
    assert response.status_code == 200, response.json


def test_id_token_hint_finds_user(http, alice, kiosk, provider):
    from .ciba_helpers import decide_request
    first = auth_req_id(http, kiosk)
    decide_request(provider, first)
    id_token = poll(http, kiosk, first).json["id_token"]
    response = bc_authorize(http, kiosk, login_hint=None, id_token_hint=id_token)
    assert response.status_code == 200, response.json


# -- invalid_request (§13, 400) ----------------------------------------------------------------

@pytest.mark.parametrize("params", [
    pytest.param({"scope": None}, id="missing-scope"),
    pytest.param({"login_hint": None}, id="no-hint"),
    pytest.param({"login_hint_token": "x.y.z"}, id="two-hints"),
    pytest.param({"login_hint": None, "id_token_hint": "alice"}, id="bad-id-token-hint"),
    pytest.param({"requested_expiry": "soon"}, id="expiry-not-numeric"),
    pytest.param({"requested_expiry": "0"}, id="expiry-zero"),
    pytest.param({"requested_expiry": "-30"}, id="expiry-negative"),
    pytest.param({"requested_expiry": "1.5"}, id="expiry-fraction"),
    pytest.param({"requested_expiry": ""}, id="expiry-empty"),
    pytest.param({"request": "e30.e30."}, id="request-object"),
    pytest.param({"authorization_details": "{not json"}, id="authorization-details-not-json"),
])
def test_invalid_request_parameters(http, alice, kiosk, params):
    assert_error(bc_authorize(http, kiosk, **params), 400, "invalid_request")


def test_repeated_parameter(http, alice, kiosk):
    data = MultiDict([("scope", "openid"), ("login_hint", "alice"), ("login_hint", "bob")])
    response = http.post("/bc-authorize", data=data, headers=kiosk.basic())
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("body, content_type", [
    pytest.param(json.dumps({"scope": "openid", "login_hint": "alice"}), "application/json",
                 id="json"),
    pytest.param("scope=openid&login_hint=alice", "text/plain", id="text-plain"),
    pytest.param("", None, id="no-body"),
])
def test_non_form_body(http, alice, kiosk, body, content_type):
    headers = dict(kiosk.basic())
    if content_type:
        headers["Content-Type"] = content_type
    response = http.post("/bc-authorize", data=body, headers=headers)
    assert_error(response, 400, "invalid_request")


def test_parameters_in_query_string(http, alice, kiosk):
    response = http.post("/bc-authorize?login_hint=alice", data={"scope": "openid"},
                         headers=kiosk.basic())
    assert_error(response, 400, "invalid_request")


def test_get_is_not_allowed(http, kiosk):
    response = http.get("/bc-authorize?scope=openid&login_hint=alice", headers=kiosk.basic())
    assert response.status_code == 405
    assert response.json["error"] == "invalid_request"


def test_ping_client_without_client_notification_token(http, alice, make_client):
    ping = make_client("pinger", delivery_mode="ping",
                       notification_endpoint="https://rp.example/cb")
    assert_error(bc_authorize(http, ping), 400, "invalid_request")


# -- invalid_scope (§13, 400) ------------------------------------------------------------------

@pytest.mark.parametrize("scope", [
    pytest.param("profile email", id="no-openid"),
    pytest.param("openid offline_access", id="not-allowed-for-client"),
    pytest.param("openid admin", id="unknown-scope"),
])
def test_invalid_scope(http, alice, make_client, scope):
    narrow = make_client("narrow", scope="openid profile")
    assert_error(bc_authorize(http, narrow, scope=scope), 400, "invalid_scope")


# -- expired_login_hint_token (§13, 400) -------------------------------------------------------

def test_expired_login_hint_token(http, alice, make_client, clock):
    key = rsa_client_key()
    client = make_client("pkj", auth_method="private_key_jwt", jwks=public_jwks(key))
    from joserfc import jwt
    now = int(clock.now())
    token = jwt.encode({"alg": "RS256", "kid": key.kid},
                       {"sub_id": {"format": "username", "username": "alice"},
                        "iat": now - 120, "exp": now - 60}, key)
    response = http.post("/bc-authorize", data={
        "scope": "openid", "login_hint_token": token,
        **assertion_form(client_assertion(client.client_id, key, ISSUER))})
    assert_error(response, 400, "expired_login_hint_token")


# -- unknown_user_id (§13, 400) ----------------------------------------------------------------

@pytest.mark.parametrize("hint", ["bob", "nobody@example.com", "alice " * 3])
def test_unknown_user_id(http, alice, kiosk, hint):
    assert_error(bc_authorize(http, kiosk, login_hint=hint), 400, "unknown_user_id")


# -- unauthorized_client (§13, 400) ------------------------------------------------------------

def test_unauthorized_client(http, alice, make_client):
    machine = make_client("machine", grant_types=["client_credentials"])
    assert_error(bc_authorize(http, machine), 400, "unauthorized_client")


# -- missing_user_code / invalid_user_code (§13, 400) ------------------------------------------

def test_missing_user_code(http, alice, make_client):
    teller = make_client("teller", user_code_required=True)
    assert_error(bc_authorize(http, teller), 400, "missing_user_code")


def test_invalid_user_code(http, alice, make_client):
    teller = make_client("teller", user_code_required=True)
    # alice has no device, so no user code can be right
    assert_error(bc_authorize(http, teller, user_code="123456"), 400, "invalid_user_code")


# -- invalid_binding_message (§13, 400) --------------------------------------------------------

@pytest.mark.parametrize("message", [
    pytest.param("W4SCT\x07", id="bell"),
    pytest.param("line one\nline two", id="newline"),
    pytest.param("tab\there", id="tab"),
    pytest.param("right\u202eleft", id="bidi-override"),
    pytest.param("x" * 65, id="too-long"),
    pytest.param("<b>W4SCT</b>", id="markup"),
    pytest.param("<script>alert(1)</script>", id="script"),
    pytest.param("   ", id="blank"),
])
def test_invalid_binding_message(http, alice, kiosk, message):
    assert_error(bc_authorize(http, kiosk, binding_message=message), 400,
                 "invalid_binding_message")


@pytest.mark.parametrize("message", ["W4SCT", "Pay 12,50 EUR to Café Ünal", "x" * 64])
def test_valid_binding_message(http, alice, kiosk, message):
    assert bc_authorize(http, kiosk, binding_message=message).status_code == 200


# -- invalid_client (§13, 401) -----------------------------------------------------------------

def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.parametrize("headers, extra", [
    pytest.param(_basic("kiosk", "wrong"), {}, id="wrong-secret"),
    pytest.param(_basic("stranger", "whatever"), {}, id="unknown-client"),
    pytest.param({}, {}, id="no-authentication"),
    pytest.param({}, {"client_id": "kiosk"}, id="client-id-only"),
    pytest.param({}, {"client_id": "kiosk", "client_secret": "wrong"}, id="wrong-post-secret"),
    pytest.param({"Authorization": "Basic !!!"}, {}, id="garbled-basic"),
])
def test_invalid_client(http, alice, kiosk, headers, extra):
    response = bc_authorize(http, kiosk, headers=headers, **extra)
    assert_error(response, 401, "invalid_client")


def test_invalid_client_for_method_not_registered(http, alice, kiosk):
    """kiosk is registered for client_secret_basic; the right secret in the body is refused."""
    response = bc_authorize(http, kiosk, headers={}, client_id="kiosk",
                            client_secret=kiosk.secret)
    assert_error(response, 401, "invalid_client")


# -- access_denied (§13, 403) ------------------------------------------------------------------

def test_access_denied_for_disabled_user(http, alice, kiosk, provider):
    with provider.db.session() as s:
        s.get(User, alice.id).disabled = True
    assert_error(bc_authorize(http, kiosk), 403, "access_denied")

