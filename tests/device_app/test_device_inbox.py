"""The inbox model: pending newest first, history with outcomes, removal on resolve/expiry."""

import pytest

from device_app.core.inbox import Inbox

NOW = 1_800_000_000


def req(request_id, created=NOW, expires=NOW + 300, status="pending", message="M"):
    return {"request_id": request_id, "client_name": "Kiosk", "binding_message": message,
            "created_at": created, "expires_at": expires, "status": status}


def test_pending_newest_first_and_no_duplicates():
    inbox = Inbox()
    assert inbox.add("a", req("old", created=NOW - 10), NOW)
    assert inbox.add("a", req("new", created=NOW), NOW)
    assert not inbox.add("a", req("new"), NOW)
    assert [p.request_id for p in inbox.pending()] == ["new", "old"]


@pytest.mark.parametrize("req_", [req("x", status="approved"), req("x", expires=NOW - 1), {"status": "pending"}])
def test_ignores_requests_that_are_not_pending(req_):
    inbox = Inbox()
    assert not inbox.add("a", req_, NOW)
    assert inbox.pending() == []


@pytest.mark.parametrize("outcome", ["approved", "denied", "expired", "failed"])
def test_resolve_moves_to_history(outcome):
    inbox = Inbox()
    inbox.add("a", req("r"), NOW)
    assert inbox.resolve("r", outcome, "why", NOW + 1)
    assert inbox.pending() == []
    (entry,) = inbox.history()
    assert (entry.request_id, entry.outcome, entry.reason) == ("r", outcome, "why")
    assert not inbox.add("a", req("r"), NOW + 2)  # a resolved request does not come back


def test_unknown_outcome_is_an_error():
    inbox = Inbox()
    inbox.add("a", req("r"), NOW)
    with pytest.raises(ValueError):
        inbox.resolve("r", "maybe")


def test_expire_moves_only_expired_ones():
    inbox = Inbox()
    inbox.add("a", req("short", expires=NOW + 10), NOW)
    inbox.add("a", req("long", expires=NOW + 100), NOW)
    assert inbox.get("short").seconds_left(NOW + 4) == 6
    assert inbox.expire(NOW + 10) == ["short"]
    assert [p.request_id for p in inbox.pending()] == ["long"]
    assert [(h.request_id, h.outcome) for h in inbox.history()] == [("short", "expired")]


def test_busy_request_is_not_expired_while_its_decision_travels():
    inbox = Inbox()
    inbox.add("a", req("r", expires=NOW + 1), NOW)
    inbox.set_busy("r")
    assert inbox.expire(NOW + 5) == []


def test_sync_adds_new_and_drops_what_the_provider_no_longer_lists():
    inbox = Inbox()
    inbox.add("a", req("gone"), NOW)
    inbox.add("a", req("stale", expires=NOW + 1), NOW)
    inbox.add("b", req("other-account"), NOW)
    assert inbox.sync("a", [req("fresh")], NOW + 2)
    assert sorted(p.request_id for p in inbox.pending()) == ["fresh", "other-account"]
    assert [(h.request_id, h.outcome) for h in inbox.history()] == [("stale", "expired")]
    assert not inbox.sync("a", [req("fresh")], NOW + 2)


def test_remove_account():
    inbox = Inbox()
    inbox.add("a", req("r1"), NOW)
    inbox.add("b", req("r2"), NOW)
    inbox.remove_account("a")
    assert [p.request_id for p in inbox.pending()] == ["r2"]


def test_an_approval_its_client_withdrew_becomes_cancelled():
    inbox = Inbox()
    for request_id, outcome in (("ok", "approved"), ("no", "denied")):
        inbox.add("a", req(request_id), NOW)
        inbox.resolve(request_id, outcome, "", NOW + 1)
    assert inbox.approval_withdrawn("ok", "nothing was shared", NOW + 2)
    assert not inbox.approval_withdrawn("no", "x")  # only an approval can be withdrawn
    assert not inbox.approval_withdrawn("unknown", "x")
    entries = {e.request_id: e for e in inbox.history()}
    assert (entries["ok"].outcome, entries["ok"].reason) == ("cancelled", "nothing was shared")
    assert entries["no"].outcome == "denied"
