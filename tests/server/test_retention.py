"""Old CIBA requests are deleted ``request_retention_days`` after their expiry
(server/oauth/retention.py): what a client sees of a purged request, what is kept, the outbox row
that goes with it, a backlog larger than one batch, and a provider with nothing to purge writing
nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.oauth import request_ids, retention
from server.storage import ciba_requests
from server.storage.models import AuditEvent, CibaRequest, NotificationOutbox
from tests.support.callback_server import CallbackServer

from .ciba_helpers import assert_error, auth_req_id, decide_request, poll

DAY = 86400


def count(provider, model) -> int:
    with provider.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def exists(provider, req: str) -> bool:
    with provider.db.session() as s:
        return ciba_requests.by_auth_req_id_hash(s, request_ids.key(req)) is not None


@pytest.fixture
def outbox(provider):
    provider.outbox.stop()  # the test runs the loop's sweep itself
    provider.outbox._persistent = True
    return provider.outbox


def test_a_request_is_deleted_after_the_retention_and_its_id_is_then_invalid(
        http, provider, clock, alice, kiosk, outbox):
    req = auth_req_id(http, kiosk)  # expires in ciba_lifetime (300 s)
    decide_request(provider, req, approve=False)
    audited = count(provider, AuditEvent)
    clock.advance(provider.settings.ciba_lifetime + 29 * DAY)
    outbox._sweep()  # the serving process's loop: 29 days after the expiry, kept
    assert exists(provider, req)
    assert_error(poll(http, kiosk, req), 400, "access_denied")  # the denial, still told
    clock.advance(DAY + 1)
    outbox._swept_at = outbox._purged_at = 0.0  # as a minute later
    outbox._sweep()
    assert not exists(provider, req)
    # CIBA §11: an auth_req_id the provider does not know is invalid_grant.
    assert_error(poll(http, kiosk, req), 400, "invalid_grant")
    assert count(provider, AuditEvent) >= audited  # the audit trail is not the request table


def test_pending_and_recent_requests_are_kept(http, provider, clock, alice, kiosk):
    old = auth_req_id(http, kiosk)
    clock.advance(31 * DAY)
    recent = auth_req_id(http, kiosk, requested_expiry="1800")
    assert retention.purge_some(provider) == 1
    assert not exists(provider, old) and exists(provider, recent)
    assert poll(http, kiosk, recent).status_code == 400  # pending: authorization_pending
    assert_error(poll(http, kiosk, recent), 400, "slow_down")


def test_no_retention_keeps_every_request(http, provider, clock, alice, kiosk, monkeypatch):
    monkeypatch.setattr(provider.settings, "request_retention_days", 0)
    req = auth_req_id(http, kiosk)
    clock.advance(3650 * DAY)
    assert retention.purge_some(provider) == 0 and exists(provider, req)


def test_the_outbox_row_of_a_purged_request_goes_with_it(http, provider, clock, alice,
                                                          make_client, outbox):
    endpoint = CallbackServer()  # never started: the notification stays in the outbox
    creds = make_client("teller", delivery_mode="ping", notification_endpoint=endpoint.url)
    req = auth_req_id(http, creds, client_notification_token="ping-token-123")
    decide_request(provider, req, approve=True)
    assert count(provider, NotificationOutbox) == 1
    clock.advance(31 * DAY)
    assert retention.purge_some(provider) == 1
    assert count(provider, NotificationOutbox) == 0 and count(provider, CibaRequest) == 0


def test_a_backlog_is_deleted_in_small_batches_a_bounded_number_per_call(
        http, provider, clock, alice, kiosk, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 3)
    monkeypatch.setattr(retention, "BATCHES", 2)
    for _ in range(8):
        auth_req_id(http, kiosk)
    clock.advance(31 * DAY)
    assert retention.purge_some(provider) == 6  # two batches of three, then the next call
    assert retention.purge_some(provider) == 2
    assert retention.purge_some(provider) == 0 and count(provider, CibaRequest) == 0


def test_nothing_to_purge_writes_nothing(http, provider, clock, alice, kiosk, settings):
    auth_req_id(http, kiosk)
    watcher = sqlite3.connect(Path(settings.instance_path) / "provider.db")
    before = watcher.execute("PRAGMA data_version").fetchone()[0]
    for _ in range(3):
        assert retention.purge_some(provider) == 0
        clock.advance(DAY)
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
    watcher.close()
