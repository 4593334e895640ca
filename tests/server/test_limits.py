"""Limits (issue 13), each a setting with its error: pending requests per user and per client
(429 slow_down with Retry-After), request body size (413), JSON depth (400)."""

from __future__ import annotations

import json

import pytest

from server.admin import add_user

from .ciba_helpers import assert_error, auth_req_id, bc_authorize, decide_request


@pytest.fixture
def settings(settings):
    settings.max_pending_per_user = 3
    settings.max_pending_per_client = 5
    settings.json_max_depth = 4
    settings.max_body_bytes = 8 * 1024
    return settings


def test_a_user_has_at_most_max_pending_per_user_waiting(http, kiosk, alice, clock):
    ids = [auth_req_id(http, kiosk, requested_expiry="100")]
    clock.advance(10)
    ids += [auth_req_id(http, kiosk, requested_expiry="300") for _ in range(2)]
    r = bc_authorize(http, kiosk)
    body = assert_error(r, 429, "slow_down")
    assert "3 pending" in body["error_description"]
    # the oldest ends in 90 s: that is when a new one will be accepted
    assert r.headers["Retry-After"] == "91"
    decide_request(http.application.extensions["ciba"], ids[1], approve=False)
    assert bc_authorize(http, kiosk).status_code == 200  # a decided one no longer counts
    assert bc_authorize(http, kiosk).status_code == 429
    clock.advance(91)  # the first expired
    assert bc_authorize(http, kiosk).status_code == 200


def test_a_client_has_at_most_max_pending_per_client_waiting(http, provider, kiosk, alice,
                                                            make_client):
    for name in ("bob", "carol"):
        add_user(provider, name, f"{name}-password")
    for hint in ("alice", "alice", "alice", "bob", "bob"):
        auth_req_id(http, kiosk, login_hint=hint)
    r = bc_authorize(http, kiosk, login_hint="carol")
    body = assert_error(r, 429, "slow_down")
    assert "client" in body["error_description"] and int(r.headers["Retry-After"]) > 0
    other = make_client("desk")  # another client is not held back by this one's flood
    assert bc_authorize(http, other, login_hint="carol").status_code == 200


def test_zero_turns_a_cap_off(http, kiosk, alice, settings):
    settings.max_pending_per_user = 0
    for _ in range(5):
        assert bc_authorize(http, kiosk).status_code == 200


@pytest.mark.parametrize("path", ["/bc-authorize", "/token", "/device/enroll"])
def test_a_body_over_max_body_bytes_is_413(http, kiosk, path):
    r = http.post(path, data={"scope": "openid", "binding_message": "x" * 9000},
                  headers=kiosk.basic())
    assert r.status_code == 413
    assert r.get_json()["error"] == "invalid_request"


def test_json_depth_is_the_setting(http, kiosk, alice):
    ok = [{"type": "loan", "items": [{"isbn": "978-0"}]}]  # 4 levels
    assert bc_authorize(http, kiosk, authorization_details=json.dumps(ok)).status_code == 200
    deeper = [{"type": "loan", "items": [{"isbn": ["978-0"]}]}]
    body = assert_error(bc_authorize(http, kiosk, authorization_details=json.dumps(deeper)),
                        400, "invalid_request")
    assert "deeper than 4" in body["error_description"]


def test_the_limits_are_documented_settings():
    from pathlib import Path

    reference = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for name in ("MAX_PENDING_PER_USER", "MAX_PENDING_PER_CLIENT", "MAX_SOCKETS_PER_DEVICE",
                 "MAX_BODY_BYTES", "JSON_MAX_DEPTH", "SERVE_READ_TIMEOUT"):
        assert f"CIBA_{name}" in reference
