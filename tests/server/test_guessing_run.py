"""A guessing run against real provider processes: 30 wrong passwords as fast as the client
can send them, then the right one, on another process sharing the same counts (the database,
or Redis when CIBA_REDIS_URL is set). The run is stopped: the right password is refused, and
the audit log shows which guesses were never even checked."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests

from tests.support.provider_process import ProviderProcess

pytestmark = pytest.mark.slow

#: No waits, a lockout after 10 failures: the outcome does not depend on how fast the run is.
LIMITS = {"CIBA_SIGNIN_DELAY_AFTER": "100", "CIBA_SIGNIN_MAX_FAILURES": "10"}


def page_text(response: requests.Response) -> str:
    """The page without its per-session CSRF token."""
    return re.sub(r'(csrf_token" value="|data-csrf=")[^"]+', r"\1-", response.text)


def attempt(base: str, password: str) -> requests.Response:
    session = requests.Session()
    page = session.get(base + "/account/login", timeout=20)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return session.post(base + "/account/login", allow_redirects=False, timeout=20, data={
        "username": "alice", "password": password, "csrf_token": token})


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_guessing_run_is_stopped_across_processes(tmp_path, request, store):
    env = dict(LIMITS)
    if store == "redis":
        env["CIBA_REDIS_URL"] = request.getfixturevalue("redis_url")
    issuer = f"http://op-{uuid.uuid4().hex[:8]}.test"  # its own Redis namespace
    instance = tmp_path / "instance"
    with ProviderProcess(tmp_path / "a", instance=instance, env=env, name="a",
                         issuer=issuer) as a, \
            ProviderProcess(tmp_path / "b", instance=instance, env=env, name="b",
                            issuer=issuer) as b:
        a.cli("users", "add", "alice", "--password", "correct horse battery")
        answers = [attempt(a.url(), f"guess-{n}") for n in range(30)]
        assert {r.status_code for r in answers} == {401}
        # the lockout answers exactly like a wrong password
        assert len({page_text(r) for r in answers}) == 1
        right = attempt(b.url(), "correct horse battery")
        assert right.status_code == 401 and page_text(right) == page_text(answers[0])
        events = [json.loads(line) for line in a.cli("audit", "export").splitlines()]
    failed = [e for e in events if e["event"] == "sign_in_failed"]
    assert len(failed) == 31
    assert sum(not e["detail"]["held_back"] for e in failed) == 10  # only 10 were checked
    assert [e["detail"]["kind"] for e in events if e["event"] == "sign_in_locked"] == ["account"]
