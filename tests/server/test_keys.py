"""Signing keys: the JWKS (RFC 7517), persistence across restarts, and rotation that publishes a
new kid before any token carries it while old keys keep verifying."""

from __future__ import annotations

import pytest

from server import create_app
from server.cli import main as cli

from .ciba_helpers import auth_req_id, decide_request, poll, verify_jwt

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _tokens(http, creds, provider) -> dict:
    req = auth_req_id(http, creds)
    decide_request(provider, req)
    response = poll(http, creds, req)
    assert response.status_code == 200, response.json
    return response.json


def _kid(token: str) -> str:
    from joserfc import jws
    return jws.extract_compact(token.encode()).headers()["kid"]


def test_jwks_publishes_public_keys_only(http):
    response = http.get("/jwks")
    assert response.status_code == 200
    keys = response.json["keys"]
    assert {k["kty"] for k in keys} == {"RSA", "EC"}
    for key in keys:
        assert key["kid"] and key["use"] == "sig"
        assert not PRIVATE_MEMBERS & set(key), key
    assert len({k["kid"] for k in keys}) == len(keys)


def test_keys_survive_a_restart(http, settings, clock):
    before = http.get("/jwks").json
    again = create_app(settings, clock=clock).test_client().get("/jwks").json
    assert again == before


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_tokens_name_a_published_kid(http, alice, make_client, provider, alg):
    client = make_client("c", id_token_signed_response_alg=alg)
    body = _tokens(http, client, provider)
    kids = {k["kid"] for k in http.get("/jwks").json["keys"]}
    assert _kid(body["id_token"]) in kids and _kid(body["access_token"]) in kids


def test_rotation_publishes_before_signing(http, alice, kiosk, provider, clock):
    old = _tokens(http, kiosk, provider)
    old_kid = _kid(old["id_token"])
    new_kids = provider.keys.rotate(publish_ahead=3600)
    published = {k["kid"] for k in http.get("/jwks").json["keys"]}
    assert set(new_kids) <= published and old_kid in published
    # published, not yet signing
    assert _kid(_tokens(http, kiosk, provider)["id_token"]) == old_kid
    clock.advance(3601)
    fresh = _tokens(http, kiosk, provider)
    assert _kid(fresh["id_token"]) in new_kids
    jwks = http.get("/jwks").json
    # the old key still verifies what it signed; the new one verifies the new tokens
    assert verify_jwt(old["id_token"], jwks, ["RS256"]).claims["sub"] == alice.id
    assert verify_jwt(fresh["id_token"], jwks, ["RS256"]).claims["sub"] == alice.id


def test_cli_keys_rotate(http, settings, clock, capsys):
    before = {k["kid"] for k in http.get("/jwks").json["keys"]}
    assert cli(["keys", "rotate", "--instance", settings.instance_path,
                "--publish-ahead", "600"]) == 0
    assert "published keys" in capsys.readouterr().out
    # a provider process (re)reading the instance sees old and new keys
    after = {k["kid"] for k in create_app(settings, clock=clock).test_client()
             .get("/jwks").json["keys"]}
    assert before < after and len(after) == len(before) + 2


def test_retired_key_leaves_the_jwks(http, provider):
    new_kids = provider.keys.rotate(publish_ahead=0)
    old = [k["kid"] for k in http.get("/jwks").json["keys"] if k["kid"] not in new_kids]
    provider.keys.retire(old[0])
    assert old[0] not in {k["kid"] for k in http.get("/jwks").json["keys"]}
