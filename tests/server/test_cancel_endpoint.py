"""POST /bc-cancel: a client withdraws its own pending request (an extension; server/oauth/cancel.py).

Client authentication as at the token endpoint (every method), RFC 6749 §5.2 errors, what the
client's polls, the devices and a late device decision see afterwards.
"""

from __future__ import annotations

import pytest

from server.oauth.decisions import Outcome, decide
from server.storage import ciba_requests

from .ciba_helpers import FORM, assert_error, auth_req_id, decide_request, poll
from .test_cancel import Recorder, row_id
from .test_client_auth import METHODS, _bc_authorize, _register


def bc_cancel(http, creds, req_id: str | None, headers=None, **extra):
    data = {"auth_req_id": req_id, **extra} if req_id is not None else dict(extra)
    return http.post("/bc-cancel", data=data,
                     headers=creds.basic() if headers is None else headers)


def test_discovery_advertises_the_cancel_endpoint(http):
    metadata = http.get("/.well-known/openid-configuration").json
    assert metadata["ciba_stack_backchannel_cancel_endpoint"] == "http://op.test/bc-cancel"


def test_cancel_ends_the_request_and_the_client_then_gets_access_denied(http, provider, alice,
                                                                       kiosk):
    recorder = Recorder()
    provider.notifier.register(recorder)
    req = auth_req_id(http, kiosk)
    response = bc_cancel(http, kiosk, req)
    assert response.status_code == 200 and response.json == {"status": "cancelled"}
    assert response.headers["Cache-Control"] == "no-store"
    assert [r[2] for r in recorder.resolved] == ["cancelled"]
    assert_error(poll(http, kiosk, req), 400, "access_denied")
    # idempotent, like RFC 7009 §2.2
    assert bc_cancel(http, kiosk, req).json == {"status": "cancelled"}
    # a late Accept does not revive it
    assert decide(provider, row_id(provider, req), True, "device:x") is Outcome.ALREADY_DECIDED


@pytest.mark.parametrize("method, alg", METHODS)
def test_every_client_authentication_method_works(http, provider, alice, make_client, method, alg):
    who = _register(make_client, method, alg)
    req = _bc_authorize(http, who).json["auth_req_id"]
    headers, fields = who.credentials()
    response = http.post("/bc-cancel", headers=headers, data={"auth_req_id": req, **fields})
    assert response.status_code == 200, response.json


def test_invalid_request_without_auth_req_id(http, alice, kiosk):
    assert_error(bc_cancel(http, kiosk, None), 400, "invalid_request")


def test_invalid_request_not_a_form(http, alice, kiosk):
    response = http.post("/bc-cancel", json={"auth_req_id": "x"}, headers=kiosk.basic())
    assert_error(response, 400, "invalid_request")


def test_invalid_request_repeated_parameter(http, alice, kiosk):
    response = http.post("/bc-cancel", data="auth_req_id=a&auth_req_id=b",
                         headers={**kiosk.basic(), "Content-Type": FORM})
    assert_error(response, 400, "invalid_request")


def test_invalid_client(http, alice, kiosk):
    req = auth_req_id(http, kiosk)
    response = bc_cancel(http, kiosk, req, headers={"Authorization": "Basic a2lvc2s6d3Jvbmc="})
    assert_error(response, 401, "invalid_client")
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_unauthorized_client(http, alice, make_client):
    reporting = make_client("reporting", grant_types=["client_credentials"])
    assert_error(bc_cancel(http, reporting, "anything"), 400, "unauthorized_client")


def test_invalid_grant_for_an_unknown_or_another_clients_request(http, alice, kiosk,
                                                                 make_client):
    other = make_client("other")
    req = auth_req_id(http, kiosk)
    assert_error(bc_cancel(http, kiosk, "no-such-request"), 400, "invalid_grant")
    assert_error(bc_cancel(http, other, req), 400, "invalid_grant")
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")


def test_invalid_grant_after_a_denial(http, provider, alice, kiosk):
    req = auth_req_id(http, kiosk)
    decide_request(provider, req, False)
    body = assert_error(bc_cancel(http, kiosk, req), 400, "invalid_grant")
    assert "denied" in body["error_description"]


def test_an_approved_request_whose_tokens_were_not_fetched_is_cancelled_too(http, provider, alice,
                                                                          kiosk):
    """The client says it does not want the tokens: they can never be fetched afterwards."""
    recorder = Recorder()
    provider.notifier.register(recorder)
    req = auth_req_id(http, kiosk)
    decide_request(provider, req, True)
    response = bc_cancel(http, kiosk, req)
    assert response.status_code == 200 and response.json == {"status": "cancelled"}
    body = assert_error(poll(http, kiosk, req), 400, "access_denied")
    assert "cancelled" in body["error_description"]
    assert [r[2] for r in recorder.resolved] == ["approved", "cancelled"]  # devices hear it
    assert bc_cancel(http, kiosk, req).json == {"status": "cancelled"}  # idempotent
    with provider.db.session() as s:  # the record still shows that the user approved
        row = ciba_requests.get(s, row_id(provider, req))
        assert row.status == "cancelled" and row.decided_by == "client" and row.auth_time


def test_invalid_grant_once_the_tokens_were_issued(http, provider, alice, kiosk):
    req = auth_req_id(http, kiosk)
    decide_request(provider, req, True)
    assert poll(http, kiosk, req).status_code == 200
    body = assert_error(bc_cancel(http, kiosk, req), 400, "invalid_grant")
    assert "already issued" in body["error_description"]


def test_expired_token_for_an_approved_request_past_its_expiry(http, provider, alice, kiosk, clock):
    req = auth_req_id(http, kiosk)
    decide_request(provider, req, True)
    clock.advance(provider.settings.ciba_lifetime + 1)
    assert_error(bc_cancel(http, kiosk, req), 400, "expired_token")
    assert_error(poll(http, kiosk, req), 400, "expired_token")  # as the token endpoint says


def test_expired_token_after_expiry(http, provider, alice, kiosk, clock):
    req = auth_req_id(http, kiosk)
    clock.advance(provider.settings.ciba_lifetime + 1)
    assert_error(bc_cancel(http, kiosk, req), 400, "expired_token")
