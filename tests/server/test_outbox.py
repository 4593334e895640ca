"""The durable notification outbox (CIBA §10.2, §10.3, §12; FAPI-CIBA §5.2.2): one delivery per
decision, retries with backoff on network errors and 5xx until the request's expiry,
Retry-After, no retry after a 4xx, and a push payload made once and re-sent identically.

The clock is frozen and the outbox's ``step()`` is called by the test; the background loop is
stopped so that only the test decides when an attempt happens. Restarts and several processes:
test_outbox_processes.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from server.oauth import outbox as outbox_module
from server.oauth import request_ids
from server.storage import ciba_requests, outbox as outbox_repo
from server.storage.models import NotificationOutbox, Token
from tests.support.callback_server import CallbackServer

from .ciba_helpers import auth_req_id, decide_request


@pytest.fixture
def outbox(provider):
    provider.outbox.stop()  # the test steps it
    return provider.outbox


@pytest.fixture
def callback():
    server = CallbackServer()
    yield server
    server.stop()


def make(make_client, mode, callback, name=None):
    return make_client(name or mode, delivery_mode=mode, notification_endpoint=callback.url)


def rows(provider) -> list[NotificationOutbox]:
    with provider.db.session() as s:
        found = list(s.query(NotificationOutbox))
        s.expunge_all()
    return found


@pytest.mark.parametrize("grouped", [False, True], ids=["own", "grouped"])
def test_a_ping_answered_401_is_sent_exactly_once(http, provider, clock, alice, make_client,
                                                  outbox, callback, grouped):
    callback.script = [(401, {})]
    callback.start()
    creds = make(make_client, "ping", callback)
    req = auth_req_id(http, creds, client_notification_token="ping-token")
    decide_request(provider, req, grouped=grouped)
    assert outbox.step() == 1
    for _ in range(5):  # nothing more, however long we wait
        clock.advance(120)
        assert outbox.step() == 0
    assert len(callback.received) == 1
    assert callback.received[0]["body"] == {"auth_req_id": req}
    [row] = rows(provider)
    assert (row.status, row.attempts, row.last_status) == ("failed", 1, 401)


@pytest.mark.parametrize("status", [400, 403, 404, 410, 429])
def test_no_retry_after_any_4xx(http, provider, clock, alice, make_client, outbox, callback,
                                status):
    callback.script = [(status, {"Retry-After": "1"})]
    callback.start()
    req = auth_req_id(http, make(make_client, "ping", callback), client_notification_token="t")
    decide_request(provider, req)
    outbox.step()
    clock.advance(60)
    assert outbox.step() == 0
    assert len(callback.received) == 1 and rows(provider)[0].status == "failed"


@pytest.mark.parametrize("grouped", [False, True], ids=["own", "grouped"])
def test_a_push_whose_callback_is_down_gets_its_tokens_once_it_is_back(
        http, provider, clock, alice, make_client, outbox, callback, grouped):
    creds = make(make_client, "push", callback)
    req = auth_req_id(http, creds, client_notification_token="push-token",
                      scope="openid offline_access")
    decide_request(provider, req, grouped=grouped)
    assert outbox.step() == 1  # connection refused: nobody listens yet
    [row] = rows(provider)
    assert row.status == "pending" and row.attempts == 1 and "unreachable" in row.last_error
    sealed = row.payload_sealed
    assert sealed and "access_token" not in sealed  # made once, and kept sealed
    callback.script = [(503, {"Retry-After": "30"}), (204, {})]
    callback.start()
    clock.advance(outbox_module.BACKOFF_CAP)
    assert outbox.step() == 1  # 503 with Retry-After: 30
    clock.advance(10)
    assert outbox.step() == 0  # Retry-After is honoured
    clock.advance(21)
    assert outbox.step() == 1  # 204
    clock.advance(600)
    assert outbox.step() == 0
    first, second = callback.received
    assert first["raw"] == second["raw"]  # the same payload, byte for byte
    assert first["authorization"] == "Bearer push-token"
    body = second["body"]
    assert body["auth_req_id"] == req and {"access_token", "id_token", "refresh_token"} <= set(body)
    with provider.db.session() as s:
        assert s.query(Token).count() == 1  # tokens issued once
        request = ciba_requests.by_auth_req_id_hash(s, request_ids.key(req))
        assert request.status == "exchanged"
    [row] = rows(provider)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 3, 204)


def test_5xx_is_retried_with_growing_backoff_until_the_request_expires(
        http, provider, clock, alice, make_client, outbox, callback):
    callback.script = [(500, {})] * 100
    callback.start()
    creds = make(make_client, "ping", callback)
    req = auth_req_id(http, creds, client_notification_token="t", requested_expiry="300")
    decide_request(provider, req)
    waits, last = [], clock.now()
    for _ in range(400):
        if outbox.step():
            waits.append(clock.now() - last)
            last = clock.now()
        clock.advance(1)
        if rows(provider)[0].status != "pending":
            break
    [row] = rows(provider)
    assert row.status == "failed" and "expiry" in row.last_error
    assert clock.now() <= row.deadline + outbox_module.BACKOFF_CAP
    assert len(callback.received) == row.attempts >= 5
    assert waits[1] < waits[4]  # backoff grows (1, 2, 4, 8, 16 s, with jitter)
    assert max(waits) <= outbox_module.BACKOFF_CAP + 1


def test_backoff_has_jitter():
    import random

    rng = random.Random(7)
    draws = {round(outbox_module.backoff(4, rng), 3) for _ in range(20)}
    assert len(draws) > 10 and all(4 <= d <= 8 for d in draws)


@pytest.mark.parametrize("grouped", [False, True], ids=["own", "grouped"])
def test_one_delivery_per_decision_and_no_double_claims(http, provider, clock, alice, make_client,
                                                        outbox, callback, grouped):
    callback.start()
    req = auth_req_id(http, make(make_client, "ping", callback), client_notification_token="t")
    decide_request(provider, req, grouped=grouped)
    decide_request(provider, req, grouped=grouped)  # already decided: no second row
    assert len(rows(provider)) == 1
    now = clock.now()
    with provider.db.session() as s:
        first = outbox_repo.claim_due(s, "worker-a", now, 60)
    with provider.db.session() as s:
        second = outbox_repo.claim_due(s, "worker-b", now, 60)
    assert len(first) == 1 and second == []
    with provider.db.session() as s:  # a lease that ran out may be taken over
        assert outbox_repo.claim_due(s, "worker-b", now + 61, 60) == first


@pytest.mark.parametrize("grouped", [False, True], ids=["own", "grouped"])
def test_push_denial_and_expiry_are_delivered_through_the_outbox(
        http, provider, clock, alice, make_client, outbox, callback, grouped):
    from server.oauth.decisions import sweep_expired

    callback.start()
    creds = make(make_client, "push", callback)
    denied = auth_req_id(http, creds, client_notification_token="t")
    expired = auth_req_id(http, creds, client_notification_token="t", requested_expiry="60")
    decide_request(provider, denied, approve=False, grouped=grouped)
    clock.advance(61)
    assert sweep_expired(provider) == 1
    assert outbox.step() == 2
    bodies = {r["body"]["auth_req_id"]: r["body"]["error"] for r in callback.wait_for(2)}
    assert bodies == {denied: "access_denied", expired: "expired_token"}


def test_the_expiry_sweep_writes_only_when_a_request_has_expired(http, provider, clock, alice,
                                                                 kiosk, outbox, settings):
    """Each serving process sweeps every two seconds; an idle one must not write (a pending
    poll's promise to write nothing, and SQLite's one writer), and an expiry is swept once."""
    from server.oauth.decisions import SWEEP_EVERY, sweep_expired_once_per

    auth_req_id(http, kiosk, requested_expiry="60")
    watcher = sqlite3.connect(Path(settings.instance_path) / "provider.db")
    before = watcher.execute("PRAGMA data_version").fetchone()[0]
    for _ in range(5):  # five slots with nothing expired
        assert sweep_expired_once_per(provider) == 0
        clock.advance(SWEEP_EVERY)
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == before, "an idle sweep wrote"
    clock.advance(60)
    assert sweep_expired_once_per(provider) == 1
    assert sweep_expired_once_per(provider) == 0  # the same slot, and nothing left
    assert watcher.execute("PRAGMA data_version").fetchone()[0] != before  # it sees writes
    watcher.close()


def test_a_client_cancelling_its_own_request_is_not_notified(http, provider, alice, make_client,
                                                              outbox, callback):
    from server.oauth.decisions import cancel

    callback.start()
    req = auth_req_id(http, make(make_client, "push", callback), client_notification_token="t")
    with provider.db.session() as s:
        row_id = ciba_requests.by_auth_req_id_hash(s, request_ids.key(req)).id
    cancel(provider, row_id, "client")
    assert rows(provider) == [] and outbox.step() == 0


def test_the_loop_delivers_at_once_on_a_decision(http, provider, alice, make_client, callback):
    callback.start()
    req = auth_req_id(http, make(make_client, "ping", callback), client_notification_token="t")
    decide_request(provider, req)  # no step(): the decision wakes the loop
    assert callback.wait_for(1)[0]["body"] == {"auth_req_id": req}


def test_failed_deliveries_are_shown_to_operators(http, app, provider, alice, make_client, outbox,
                                                  callback):
    import re

    from server.admin_users import set_admin

    callback.script = [(401, {})]
    callback.start()
    req = auth_req_id(http, make(make_client, "ping", callback, "teller"),
                      client_notification_token="t")
    decide_request(provider, req)
    outbox.step()
    browser = app.test_client()
    form = browser.get("/account/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    browser.post("/account/login", data={"username": "alice", "password": "alice-password",
                                         "csrf_token": csrf})
    assert browser.get("/admin/deliveries").status_code == 403  # not an operator yet
    set_admin(provider, "alice", True)
    assert 'id="deliveries-link"' in browser.get("/admin/").get_data(as_text=True)
    page = browser.get("/admin/deliveries").get_data(as_text=True)
    assert 'data-client="teller"' in page and callback.url in page
    assert '<td class="status">401</td>' in page
    assert req not in page  # never the auth_req_id


def test_a_redirect_is_not_followed_nor_retried(http, provider, clock, alice, make_client, outbox,
                                                callback):
    callback.script = [(302, {"Location": "http://127.0.0.1:1/elsewhere"})]
    callback.start()
    req = auth_req_id(http, make(make_client, "ping", callback), client_notification_token="t")
    decide_request(provider, req)
    outbox.step()
    clock.advance(60)
    assert outbox.step() == 0
    assert len(callback.received) == 1 and rows(provider)[0].status == "failed"


@pytest.mark.parametrize("header, seconds", [
    ("120", 120.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 30.0), ("soon", None), ("", None)])
def test_retry_after_as_seconds_or_http_date(header, seconds):
    from email.utils import parsedate_to_datetime

    from server.oauth.delivery import retry_after

    now = parsedate_to_datetime("Wed, 21 Oct 2015 07:27:30 GMT").timestamp()
    assert retry_after(header, now) == seconds


def test_a_loop_only_woken_by_a_decision_ends_when_nothing_is_left(http, provider, alice,
                                                                   make_client, callback):
    import time

    callback.start()
    loop = provider.outbox
    loop.poll_interval, loop.idle_polls = 0.05, 3
    req = auth_req_id(http, make(make_client, "ping", callback), client_notification_token="t")
    decide_request(provider, req)
    callback.wait_for(1)
    deadline = time.monotonic() + 30
    while loop._thread is not None:
        assert time.monotonic() < deadline, "the loop kept running with nothing to send"
        time.sleep(0.05)
    second = auth_req_id(http, make(make_client, "ping", callback, "ping2"),
                         client_notification_token="t")
    decide_request(provider, second)  # wakes a new loop
    assert callback.wait_for(2)[1]["body"] == {"auth_req_id": second}


@pytest.mark.parametrize("grouped", [False, True], ids=["own", "grouped"])
@pytest.mark.parametrize("approve", [True, False])
def test_decision_audit_and_delivery_commit_together(http, provider, alice, make_client,
                                                     outbox, callback, monkeypatch, approve,
                                                     grouped):
    """One transaction (ciba_requests.finish; ``grouped``: the unit of finish_grouped, as the
    devices and the conformance hook decide): a delivery that cannot be stored undoes the
    decision and its audit record, so the request stays pending and can still be decided."""
    from server.oauth import delivery
    from server.storage import audit as audit_repo

    def decisions_audited(s) -> list[str]:
        return [r.event for r in audit_repo.newest(s, audit_repo.AuditFilter(client_id="ping"))
                if r.event.startswith("request_")]

    creds = make(make_client, "ping", callback)
    req = auth_req_id(http, creds, client_notification_token="ping-token")
    module, name = (outbox_repo, "enqueue_on") if grouped else (delivery, "enqueue")
    original = getattr(module, name)

    def broken(*args, **kwargs):
        original(*args, **kwargs)
        raise RuntimeError("the outbox row could not be stored")

    monkeypatch.setattr(module, name, broken)
    with pytest.raises(RuntimeError):
        decide_request(provider, req, approve=approve, grouped=grouped)
    with provider.db.session() as s:
        assert ciba_requests.by_auth_req_id_hash(s, request_ids.key(req)).status == "pending"
        assert not decisions_audited(s)
    assert rows(provider) == []
    monkeypatch.setattr(module, name, original)
    decide_request(provider, req, approve=approve, grouped=grouped)
    with provider.db.session() as s:
        status = ciba_requests.by_auth_req_id_hash(s, request_ids.key(req)).status
        events = decisions_audited(s)
    assert status == ("approved" if approve else "denied")
    assert events == ["request_approved" if approve else "request_denied"]
    [row] = rows(provider)
    assert (row.mode, row.status, row.request_id) == ("ping", "pending",
                                                      _request_id(provider, req))
    callback.start()
    assert outbox.step() == 1
    assert callback.wait_for(1)[0]["body"] == {"auth_req_id": req}


def test_poll_ping_and_push_decisions_share_one_commit(http, provider, alice, make_client,
                                                       outbox, callback, monkeypatch):
    """Concurrent decisions of a poll, a ping and a push request in one batch: one commit,
    each decided once, an outbox row for the ping and the push only, each announced."""
    import threading

    from server.storage import group_commit

    from .test_group_commit import one_batch

    callback.start()
    reqs = {mode: auth_req_id(http, make(make_client, mode, callback),
                              client_notification_token="t") for mode in ("ping", "push")}
    reqs["poll"] = auth_req_id(http, make_client("poll", delivery_mode="poll"))
    group = provider.db.extras.setdefault(ciba_requests.UNITS,
                                          group_commit.Units(provider.db.engine))
    one_batch(monkeypatch, provider, 3)
    before = group.commits
    outcomes: dict = {}
    threads = [threading.Thread(target=lambda m=m: outcomes.__setitem__(
        m, decide_request(provider, reqs[m], approve=m != "push", grouped=True)))
        for m in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {m: o.value for m, o in outcomes.items()} == {
        "ping": "approved", "push": "denied", "poll": "approved"}
    assert group.commits == before + 1
    assert sorted((r.mode, r.request_id) for r in rows(provider)) == sorted(
        (m, _request_id(provider, reqs[m])) for m in ("ping", "push"))
    assert outbox.step() == 2
    bodies = {r["body"]["auth_req_id"]: r["body"].get("error") for r in callback.wait_for(2)}
    assert bodies == {reqs["ping"]: None, reqs["push"]: "access_denied"}


def _request_id(provider, req: str) -> str:
    with provider.db.session() as s:
        return ciba_requests.by_auth_req_id_hash(s, request_ids.key(req)).id
