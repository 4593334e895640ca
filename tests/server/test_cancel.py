"""Cancelling a pending request (an extension: server.oauth.decisions.cancel): what the client,
the devices and the approval page see afterwards."""

from __future__ import annotations

import pytest

from server.oauth.decisions import Outcome, cancel, decide, sweep_expired
from server.oauth import request_ids
from server.storage import ciba_requests

from .ciba_helpers import assert_error, auth_req_id, poll
from .test_delivery_modes import notification_endpoint  # noqa: F401  (fixture)


def row_id(provider, req_id: str) -> str:
    with provider.db.session() as s:
        return ciba_requests.by_auth_req_id_hash(s, request_ids.key(req_id)).id


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.resolved: list[tuple[str, str, str]] = []

    def request_created(self, event) -> None:
        pass

    def request_resolved(self, user_id: str, request_id: str, status: str) -> None:
        self.resolved.append((user_id, request_id, status))


def test_a_cancelled_request_answers_access_denied(http, provider, alice, kiosk):
    req = auth_req_id(http, kiosk)
    assert cancel(provider, row_id(provider, req), "operator:olga") is Outcome.CANCELLED
    body = assert_error(poll(http, kiosk, req), 400, "access_denied")
    assert "cancelled" in body["error_description"]


def test_devices_are_told_the_request_was_cancelled(http, provider, alice, kiosk):
    recorder = Recorder()
    provider.notifier.register(recorder)
    req = auth_req_id(http, kiosk)
    rid = row_id(provider, req)
    cancel(provider, rid, "client")
    with provider.db.session() as s:
        device_request_id = ciba_requests.get(s, rid).device_request_id
    assert recorder.resolved == [(alice.id, device_request_id, "cancelled")]


def test_a_decision_after_cancel_is_refused_and_cancel_after_a_decision_too(http, provider,
                                                                            alice, kiosk):
    first, second = auth_req_id(http, kiosk), auth_req_id(http, kiosk)
    cancel(provider, row_id(provider, first), "client")
    assert decide(provider, row_id(provider, first), True, "test") is Outcome.ALREADY_DECIDED
    decide(provider, row_id(provider, second), True, "test")
    assert cancel(provider, row_id(provider, second), "client") is Outcome.ALREADY_DECIDED
    assert cancel(provider, "no-such-request", "client") is Outcome.NOT_FOUND


@pytest.mark.parametrize("swept", [False, True], ids=["not-swept", "swept"])
def test_an_expired_request_cannot_be_cancelled_nor_decided(http, provider, alice, kiosk, clock,
                                                            swept):
    """Expired, whether the sweep has marked it yet or not (a process sweeps every 2 s)."""
    req = auth_req_id(http, kiosk)
    clock.advance(provider.settings.ciba_lifetime + 1)
    if swept:
        assert sweep_expired(provider) == 1
    assert cancel(provider, row_id(provider, req), "client") is Outcome.EXPIRED
    assert decide(provider, row_id(provider, req), True, "test") is Outcome.EXPIRED


@pytest.mark.parametrize("cancelled_by, told", [("operator:olga", True), ("client", False)])
def test_push_clients_hear_of_an_operator_cancel_only(http, provider, alice, make_client,
                                                     notification_endpoint, cancelled_by, told):
    creds = make_client("pos", delivery_mode="push",
                        notification_endpoint=notification_endpoint.url)
    req = auth_req_id(http, creds, client_notification_token="push-token-789")
    cancel(provider, row_id(provider, req), cancelled_by)
    if told:
        _, _, body = notification_endpoint.received.get(timeout=5)
        assert (body["auth_req_id"], body["error"]) == (req, "access_denied")
        assert "access_token" not in body
    else:
        assert notification_endpoint.received.empty()


def test_client_uri_and_logo_uri_are_registered_and_checked(make_client):
    from server.admin import AdminError

    creds = make_client("shop", client_uri="https://shop.example",
                        logo_uri="https://shop.example/logo.png")
    assert creds.metadata["client_uri"] == "https://shop.example"
    assert creds.metadata["logo_uri"] == "https://shop.example/logo.png"
    with pytest.raises(AdminError, match="logo URI"):
        make_client("bad", logo_uri="http://evil.example/logo.png")
