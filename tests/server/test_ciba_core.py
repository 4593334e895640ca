"""server/oauth/ciba_core.py lifted out of this provider: the minimal Flask app of
docs/extending.md (Authlib, ciba_core, in-memory storage) runs a CIBA poll flow over real HTTP,
and importing ciba_core brings in nothing of this provider's storage or wiring."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import requests

from tests.support.provider_process import ROOT, Process, free_port, wait_http

EXAMPLE = ROOT / "docs" / "examples" / "minimal_ciba_app.py"
CIBA = "urn:openid:params:grant-type:ciba"
AUTH = ("kiosk", "kiosk-secret")


def test_the_docs_show_the_example_as_it_is():
    doc = (ROOT / "docs" / "extending.md").read_text()
    block = re.search(r"```python\n(\"\"\"A whole CIBA provider in one file.*?)```", doc, re.S)
    assert block, "docs/extending.md lost the minimal app"
    assert block.group(1) == EXAMPLE.read_text()


def test_ciba_core_needs_only_authlib():
    code = ("import sys\nimport server.oauth.ciba_core\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'flask', 'kivy')"
            " or m in ('server.provider', 'server.wiring', 'server.storage', 'server.config')]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr


@pytest.fixture
def example(tmp_path):
    port = free_port()
    process = Process([sys.executable, str(EXAMPLE), str(port)], cwd=str(tmp_path),
                      env={"PYTHONPATH": str(ROOT)}, log_path=tmp_path / "example.log")
    base = f"http://127.0.0.1:{port}"
    try:
        # Any answer means it listens (a GET of /token is 405).
        wait_http(base + "/token", process=process)
        yield base, process
    finally:
        process.stop()


def _start(base: str, **form) -> requests.Response:
    return requests.post(base + "/bc-authorize", auth=AUTH, timeout=10,
                         data={"scope": "openid", **form})


def _poll(base: str, auth_req_id: str) -> requests.Response:
    return requests.post(base + "/token", auth=AUTH, timeout=10,
                         data={"grant_type": CIBA, "auth_req_id": auth_req_id})


@pytest.mark.parametrize("approve", [True, False])
def test_poll_flow_over_http(example, approve):
    base, process = example
    started = _start(base, login_hint="alice", binding_message="DESK-1")
    assert started.status_code == 200, started.text
    assert started.headers["Cache-Control"] == "no-store"
    body = started.json()
    assert set(body) == {"auth_req_id", "expires_in", "interval"} and body["interval"] == 1
    pending = _poll(base, body["auth_req_id"])
    assert (pending.status_code, pending.json()["error"]) == (400, "authorization_pending")
    too_soon = _poll(base, body["auth_req_id"])
    assert too_soon.json()["error"] == "slow_down"

    path = process.wait_for(r"ask Alice \(DESK-1\): (/device/decide/\S+)").group(1)
    decided = requests.post(base + path, data={"approve": "yes" if approve else "no"}, timeout=10)
    assert decided.json()["status"] == ("approved" if approve else "denied")

    time.sleep(body["interval"])  # the interval the provider asked for
    result = _poll(base, body["auth_req_id"])
    if not approve:
        assert (result.status_code, result.json()["error"]) == (400, "access_denied")
        return
    assert result.status_code == 200, result.text
    assert result.json()["token_type"] == "Bearer" and result.json()["access_token"]
    again = _poll(base, body["auth_req_id"])  # CIBA §11: single use
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("form, auth, status, error", [
    ({"login_hint": "bob"}, AUTH, 400, "unknown_user_id"),
    ({"login_hint": "alice", "scope": "profile"}, AUTH, 400, "invalid_scope"),
    ({"login_hint": "alice", "login_hint_token": "x.y.z"}, AUTH, 400, "invalid_request"),
    ({"login_hint": "alice", "requested_expiry": "-1"}, AUTH, 400, "invalid_request"),
    ({"login_hint": "alice"}, ("kiosk", "wrong"), 401, "invalid_client"),
])
def test_errors_over_http(example, form, auth, status, error):
    base, _ = example
    response = requests.post(base + "/bc-authorize", auth=auth, timeout=10,
                             data={"scope": "openid", **form})
    assert (response.status_code, response.json()["error"]) == (status, error)
