"""Core against the in-test stub provider: enroll, push, fetch, decide, reconnect, revoke."""

import time

import pytest

from conftest import LockedDispatch, wait_for
from device_app.core.api import ProviderClient, ProviderError
from device_app.core.enrollment import EnrollmentLinkError, enroll, parse_enrollment_uri
from device_app.core.service import DeviceService
from device_app.core.store import AccountStore
from device_app.core.ws_listener import Backoff, WebSocketListener


def test_enroll_stores_account_and_sends_only_the_public_key(stub, data_dir):
    store = AccountStore(data_dir)
    account = enroll(store, parse_enrollment_uri(stub.enrollment_uri()), "Test phone")
    assert (account.username, account.issuer, account.display_name) == ("alice", stub.issuer, "Test phone")
    device = stub.devices[account.device_id]
    assert not device["key"].is_private
    assert store.get(account.device_id) == account


def test_enroll_with_a_used_code_fails(stub, data_dir):
    link = parse_enrollment_uri(stub.enrollment_uri())
    enroll(AccountStore(data_dir), link)
    with pytest.raises(ProviderError) as err:
        enroll(AccountStore(data_dir), link)
    assert (err.value.status, err.value.error) == (400, "invalid_code")


def test_enroll_unreachable_provider(data_dir):
    link = parse_enrollment_uri("http://127.0.0.1:9/device/enroll?code=x")
    with pytest.raises(ProviderError) as err:
        enroll(AccountStore(data_dir), link)
    assert err.value.error == "network_error"


@pytest.fixture
def client(stub, data_dir):
    store = AccountStore(data_dir)
    account = enroll(store, parse_enrollment_uri(stub.enrollment_uri()))
    return ProviderClient(account, store.keys.load(account.device_id))


def test_list_get_and_decide(stub, client):
    first = stub.create_request(binding_message="ONE", created_at=1)
    second = stub.create_request(binding_message="TWO", created_at=2)
    assert [r["request_id"] for r in client.list_requests()] == [second, first]
    assert client.get_request("nope") is None
    assert client.decide(first, True, "ONE").outcome == "approved"
    assert client.decide(second, False, "TWO").outcome == "denied"
    assert stub.decisions == [{"request_id": first, "decision": "accept"},
                              {"request_id": second, "decision": "deny"}]
    again = client.decide(first, False, "ONE")
    assert (again.outcome, again.reason) == ("approved", "Already decided on another device.")


def test_decision_outcomes_for_expired_and_wrong_binding_message(stub, client):
    expired = stub.create_request(lifetime=300)
    stub.requests[expired]["expires_at"] = 1
    assert client.decide(expired, True, "LIB-4 7F3K").outcome == "expired"
    other = stub.create_request()
    result = client.decide(other, True, "SOMETHING ELSE")
    assert result.outcome == "failed" and "refused" in result.reason


def test_websocket_pushes_and_resyncs_after_reconnect(stub, client):
    messages, states = [], []
    listener = WebSocketListener(client, messages.append, lambda s, d: states.append(s),
                                 backoff=Backoff(initial=0.05, maximum=0.2))
    listener.start()
    try:
        wait_for(lambda: "connected" in states)
        wait_for(lambda: any(m["type"] == "sync" for m in messages))
        request_id = stub.create_request()
        wait_for(lambda: any(m.get("request", {}).get("request_id") == request_id for m in messages))
        stub.resolve(request_id, "denied")
        wait_for(lambda: any(m["type"] == "request_resolved" for m in messages))

        waiting = stub.create_request(binding_message="WHILE AWAY")
        messages.clear()
        stub.drop_sockets()
        wait_for(lambda: states.count("connected") >= 2)
        sync = wait_for(lambda: next((m for m in messages if m["type"] == "sync"), None))
        assert [r["request_id"] for r in sync["requests"]] == [waiting]
    finally:
        listener.stop()
        listener.join(5)
    assert states[-1] == "stopped"


def test_revoked_device_is_refused(stub, client):
    stub.devices[client.account.device_id]["revoked"] = True
    with pytest.raises(ProviderError) as err:
        client.list_requests()
    assert (err.value.status, err.value.error) == (401, "invalid_token")
    states = []
    listener = WebSocketListener(client, lambda m: None, lambda s, d: states.append(s), refused_retry=30)
    listener.start()
    wait_for(lambda: "refused" in states)
    listener.stop()
    listener.join(5)


def test_service_end_to_end(stub, service):
    done = []
    service.enroll_text(stub.enrollment_uri(), done.append, pytest.fail)
    account = wait_for(lambda: done and done[0])
    wait_for(lambda: service.states.get(account.device_id) == "connected")
    request_id = stub.create_request(binding_message="PAY 12")
    wait_for(lambda: service.inbox.get(request_id))
    results = []
    assert service.decide(request_id, True, results.append)
    wait_for(lambda: results)
    assert results[0].outcome == "approved"
    assert [(h.request_id, h.outcome) for h in service.inbox.history()] == [(request_id, "approved")]

    elsewhere = stub.create_request()
    wait_for(lambda: service.inbox.get(elsewhere))
    stub.resolve(elsewhere, "denied")  # another device of the user decided
    wait_for(lambda: service.inbox.get(elsewhere) is None)
    assert service.inbox.history()[0].reason == "Decided on another device."

    service.remove_account(account.device_id)
    assert service.accounts() == []


def test_service_with_the_gotify_channel(stub, service):
    from tests.support.gotify_server import GotifyServer

    gotify = GotifyServer().start()
    try:
        tokens = gotify.add_account("alice", "alice-gotify-pw")
        stub.gotify = {"url": gotify.url, "client_token": tokens["client"]["token"],
                       "app_token": tokens["app"]["token"]}
        done = []
        service.enroll_text(stub.enrollment_uri(), done.append, pytest.fail, push="gotify")
        account = wait_for(lambda: done and done[0])
        assert account.push == "gotify"
        wait_for(lambda: service.states.get(account.device_id) == "connected")
        request_id = stub.create_request(binding_message="VIA GOTIFY")
        wait_for(lambda: service.inbox.get(request_id))  # the Gotify nudge made it fetch
    finally:
        service.stop()
        gotify.stop()


def test_errors_come_back_through_dispatch_later(data_dir):
    """The error callback runs after the worker's except block has ended (as with Clock)."""
    queued, errors = [], []
    svc = DeviceService(data_dir, dispatch=queued.append)
    svc.enroll_text("not a link", pytest.fail, errors.append)
    wait_for(lambda: queued)
    queued[0]()
    assert isinstance(errors[0], EnrollmentLinkError)


def test_a_decision_that_cannot_be_sent_stays_pending(stub, service):
    done = []
    service.enroll_text(stub.enrollment_uri(), done.append, pytest.fail)
    account = wait_for(lambda: done and done[0])
    request_id = stub.create_request(binding_message="OFFLINE")
    wait_for(lambda: service.inbox.get(request_id))
    service.client(account.device_id).account.base_url = "http://127.0.0.1:9"  # unreachable
    results = []
    service.decide(request_id, True, results.append)
    wait_for(lambda: results)
    assert (results[0].outcome, results[0].final) == ("failed", False)
    assert service.inbox.get(request_id) is not None and not service.inbox.get(request_id).busy
    (note,) = service.inbox.history()  # noted at once, so it is never lost
    assert (note.request_id, note.outcome, note.final) == (request_id, "failed", False)
    assert note.reason.startswith("Your Accept was not sent")
    service.client(account.device_id).account.base_url = stub.issuer  # back online
    service.decide(request_id, True, results.append)
    wait_for(lambda: len(results) == 2)
    (entry,) = service.inbox.history()  # the note is replaced by what happened
    assert (entry.outcome, entry.final) == ("approved", True)


def test_history_and_unsent_notes_survive_a_restart(stub, data_dir):
    from device_app.core.service import DeviceService

    first = DeviceService(data_dir, dispatch=LockedDispatch())
    done = []
    first.enroll_text(stub.enrollment_uri(), done.append, pytest.fail)
    account = wait_for(lambda: done and done[0])
    approved = stub.create_request(binding_message="KEEP ME")
    wait_for(lambda: first.inbox.get(approved))
    first.decide(approved, True)
    wait_for(lambda: first.inbox.history())
    unsent = stub.create_request(binding_message="OFFLINE", lifetime=2)
    wait_for(lambda: first.inbox.get(unsent))
    first.client(account.device_id).account.base_url = "http://127.0.0.1:9"
    first.decide(unsent, False)
    wait_for(lambda: len(first.inbox.history()) == 2)
    wait_for(lambda: (data_dir / "inbox.json").exists()
             and "OFFLINE" in (data_dir / "inbox.json").read_text())
    first.stop()
    assert (data_dir / "inbox.json").stat().st_mode & 0o777 == 0o600

    again = DeviceService(data_dir, dispatch=LockedDispatch())
    outcomes = {h.request_id: (h.outcome, h.final) for h in again.inbox.history()}
    assert outcomes == {approved: ("approved", True), unsent: ("failed", False)}
    again.tick(time.time() + 5)  # the unsent one expired while the app was closed
    assert not again.inbox.pending()
    assert again.inbox.entry(unsent).outcome == "expired"


def test_an_account_whose_key_is_gone_does_not_stop_the_others(stub, service, data_dir):
    done = []
    service.enroll_text(stub.enrollment_uri(), done.append, pytest.fail)
    account = wait_for(lambda: done and done[0])
    service.stop()
    (data_dir / "keys" / f"{account.device_id}.pem").unlink()
    fresh = DeviceService(data_dir)
    fresh.start()
    assert fresh.states[account.device_id] == "broken"
    fresh.stop()


def test_backoff_probes_fast_at_first_then_slows_down():
    now = [0.0]
    backoff = Backoff(clock=lambda: now[0])
    fast = [backoff.next_delay() for _ in range(6)]
    assert fast[0] < 0.31 and all(d <= 0.4 * 1.2 for d in fast)  # back within half a second
    now[0] = 200.0  # a long outage
    slow = [backoff.next_delay() for _ in range(12)]
    assert max(slow) > 20 and all(d <= 30 * 1.2 for d in slow)
    backoff.reset()
    assert backoff.next_delay() < 0.31
