"""Password sign-in that resists guessing (server/signin_guard.py): a guessing run on the
account page and on the approval page is slowed, then locked out; a lockout answers exactly
like a wrong password; each client address has its own limit; counts are shared through the
database and through Redis; sign-out is a POST with the CSRF token."""

from __future__ import annotations

import re
import uuid

import pytest

from server.admin import add_user
from server.clock import FrozenClock
from server.signin_guard import Policy, RedisCounters, next_block

from .ciba_helpers import auth_req_id

PASSWORD = "alice-password"


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def login(client, password: str, username: str = "alice", headers=None):
    page = client.get("/account/login", headers=headers)
    return client.post("/account/login", headers=headers, data={
        "username": username, "password": password, "csrf_token": csrf(page)})


def test_a_guessing_run_is_slowed_then_locked_out(http, alice, clock, settings):
    answers = []
    for attempt in range(settings.signin_max_failures):
        answers.append(login(http, f"guess-{attempt}"))
        clock.advance(settings.signin_max_delay)  # a patient guesser waits out every delay
    assert {r.status_code for r in answers} == {401}
    wrong = answers[-1].get_data(as_text=True)
    # Locked: the right password is answered exactly like a wrong one.
    right = login(http, PASSWORD)
    assert right.status_code == 401
    assert right.get_data(as_text=True) == wrong
    assert "That username and password do not match." in wrong
    clock.advance(settings.signin_lockout - settings.signin_max_delay - 1)
    assert login(http, PASSWORD).status_code == 401  # still locked
    clock.advance(settings.signin_max_delay + 2)
    assert login(http, PASSWORD).status_code == 302  # the lockout has passed


def test_the_delay_grows_after_the_first_failures(http, alice, clock, settings):
    for attempt in range(settings.signin_delay_after):
        assert login(http, f"guess-{attempt}").status_code == 401
    # The third failure started a one-second wait: even the right password fails in it.
    assert login(http, PASSWORD).status_code == 401
    clock.advance(1)
    assert login(http, "guess-again").status_code == 401  # fourth counted failure: 2 s
    clock.advance(1)
    assert login(http, PASSWORD).status_code == 401
    clock.advance(1)
    assert login(http, PASSWORD).status_code == 302


def test_attempts_during_a_wait_are_not_counted(http, alice, clock, settings):
    """Hammering while held back neither counts nor extends the wait."""
    for attempt in range(settings.signin_delay_after):
        login(http, f"guess-{attempt}")
    for _ in range(30):
        login(http, "hammer")
    clock.advance(1)
    assert login(http, PASSWORD).status_code == 302


def test_a_success_clears_the_account_count(http, alice, clock, settings):
    for attempt in range(settings.signin_delay_after - 1):
        login(http, f"typo-{attempt}")
    assert login(http, PASSWORD).status_code == 302
    http.post("/account/logout", data={"csrf_token": csrf(http.get("/account/"))})
    for attempt in range(settings.signin_delay_after - 1):
        login(http, f"typo-{attempt}")
    assert login(http, PASSWORD).status_code == 302


def test_the_approval_page_is_limited_too(http, alice, kiosk, provider, clock, settings):
    settings.ciba_lifetime = settings.approval_link_lifetime = 3600  # outlives the run
    auth_req_id(http, kiosk, binding_message="W4SCT")
    path = provider.console.last_links["alice"].removeprefix(provider.issuer)

    def attempt(password: str):
        page = http.get(path)
        return http.post(path, data={"action": "sign_in", "username": "alice",
                                     "password": password, "csrf_token": csrf(page)})

    for n in range(settings.signin_max_failures):
        assert attempt(f"guess-{n}").status_code == 401
        clock.advance(settings.signin_max_delay)
    locked = attempt(PASSWORD)
    assert locked.status_code == 401
    assert "That username and password do not match." in locked.get_data(as_text=True)
    assert 'id="accept"' not in locked.get_data(as_text=True)
    # the account page shares the account's count
    assert login(http, PASSWORD).status_code == 401


def test_each_client_address_has_its_own_limit(settings, clock):
    """Behind a trusted proxy: guessing across many accounts from one address locks that
    address; alice, signing in from elsewhere, is not held back."""
    from server import create_app

    settings.trusted_proxies = 1
    app = create_app(settings, clock=clock)
    provider = app.extensions["ciba"]
    add_user(provider, "alice", PASSWORD)
    for n in range(10):
        add_user(provider, f"user{n}", "pw-" + uuid.uuid4().hex)
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    http = app.test_client()
    for n in range(settings.signin_address_max_failures):
        login(http, "wrong", username=f"user{n % 10}", headers=attacker)
        clock.advance(settings.signin_max_delay)
    assert login(http, PASSWORD, headers=attacker).status_code == 401
    assert login(app.test_client(), PASSWORD,
                 headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 302
    # the audit log names the real client addresses, not the proxy's
    from server.storage import audit as audit_repo

    with provider.db.session() as s:
        rows = audit_repo.newest(s, audit_repo.AuditFilter(), limit=500)
    assert {r.address for r in rows if r.event == "sign_in_failed"} == {"203.0.113.7"}
    assert [(r.event, r.address) for r in rows if r.event.startswith("sign_in")][0] == (
        "sign_in", "198.51.100.9")
    assert ("sign_in_locked", "203.0.113.7") in {(r.event, r.address) for r in rows}


def test_unknown_names_count_against_the_address(http, alice, clock, settings):
    for n in range(settings.signin_address_max_failures):
        login(http, "pw", username=f"nobody-{n}")
        clock.advance(settings.signin_max_delay)
    assert login(http, PASSWORD).status_code == 401


def test_lockouts_and_failures_are_audited_without_the_password(http, alice, clock, settings,
                                                              provider):
    from server.storage import audit as audit_repo

    for n in range(settings.signin_max_failures):
        login(http, f"secret-guess-{n}")
        clock.advance(settings.signin_max_delay)
    with provider.db.session() as s:
        rows = audit_repo.newest(s, audit_repo.AuditFilter(), limit=100)
        events = [(r.event, r.user_id, r.address) for r in rows]
        details = " ".join(r.detail for r in rows)
    assert events.count(("sign_in_failed", alice.id, "127.0.0.1")) == settings.signin_max_failures
    assert ("sign_in_locked", alice.id, "127.0.0.1") in events
    assert "secret-guess" not in details


def test_sign_out_is_a_post_with_the_csrf_token(http, alice):
    assert login(http, PASSWORD).status_code == 302
    assert http.get("/account/logout").status_code == 405
    assert http.post("/account/logout").status_code == 400  # no token: still signed in
    assert http.get("/account/").status_code == 200
    page = http.get("/account/")
    assert 'id="signout"' in page.get_data(as_text=True)
    assert http.post("/account/logout", data={"csrf_token": csrf(page)}).status_code == 302
    assert http.get("/account/").status_code == 302  # back to the login page


@pytest.mark.parametrize("count, expected", [(1, 0.0), (2, 0.0), (3, 1.0), (4, 2.0), (6, 8.0),
                                             (9, 60.0), (10, 900.0)])
def test_the_delay_schedule(count, expected):
    policy = Policy(delay_after=3, max_failures=10, window=900, lockout=900, max_delay=60)
    until, locked = next_block(count, 1000.0, policy)
    assert (until - 1000.0 if until else 0.0) == expected
    assert locked is (count == 10)


def test_redis_counters_follow_the_same_rule(redis_url):
    policy = Policy(delay_after=3, max_failures=10, window=900, lockout=900, max_delay=60)
    counters = RedisCounters(redis_url, "test-" + uuid.uuid4().hex)
    other_process = RedisCounters(redis_url, counters._prefix.removesuffix(":signin:"))
    clock = FrozenClock(1_000_000.0)
    key = "signin:account:u1"
    try:
        for count in range(1, 11):
            failure = counters.fail(key, clock.now(), policy)
            expected, locked = next_block(count, clock.now(), policy)
            assert (failure.count, failure.blocked_until, failure.locked) == (count, expected,
                                                                              locked)
            # another process sees the same wait
            assert other_process.blocked_until(key, clock.now()) == expected
            clock.advance(60)
        # while locked, a failure changes nothing
        assert counters.fail(key, clock.now(), policy).count == 10
        clock.advance(900)
        assert counters.fail(key, clock.now(), policy).count == 1  # a new window
        counters.clear(key)
        assert other_process.blocked_until(key, clock.now()) == 0.0
    finally:
        counters.clear(key)
