"""The conformance hook's lane (server/web/testing.py's ApprovalLane) answers POST
/testing/ciba-approval exactly as the Flask view does: the same matrix of approvals, over real
HTTP, to the two gunicorn workers of tests/server/test_fast_lane.py (the lanes on and off, one
instance), status, headers but Date, and bodies compared; then the request counters. In-process:
what the lane serves and what it hands to the view, and what the decision records.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import select

from tests.support.provider_process import ProviderProcess

from .test_testing_hook import TOKEN, hook_kiosk, hook_provider, hooked  # noqa: F401
from .test_fast_lane import (APPROVER, FORM, KIOSK, both, lanes, new_request, poll_body,  # noqa: F401
                             send, shape)

BEARER = {"Authorization": f"Bearer {APPROVER}", **FORM}
PATH = "/testing/ciba-approval"


def approval(op: ProviderProcess, auth_req_id: str, action: str = "allow",
             headers: dict | None = None, extra: str = "") -> requests.Response:
    return send(op, PATH, f"auth_req_id={auth_req_id}&action={action}{extra}",
                BEARER if headers is None else headers)


def each(lanes, make, action: str = "allow", **kw) -> tuple:
    """The same approval of each worker's own new request (``make(op)``), answers compared."""
    a, b = (shape(approval(op, make(op), action, **kw)) for op in lanes)
    assert a == b, f"fast lane: {a}\nflask:     {b}"
    return a


ERRORS = [
    ("no bearer token", {**FORM}, ""),
    ("wrong bearer token", {"Authorization": "Bearer wrong", **FORM}, ""),
    ("a prefix of the token", {"Authorization": f"Bearer {APPROVER[:-1]}", **FORM}, ""),
    ("Basic scheme", {"Authorization": f"Basic {APPROVER}", **FORM}, ""),
    ("lower-case scheme", {"Authorization": f"bearer {APPROVER}", **FORM}, ""),
    ("repeated parameter", BEARER, "&action=deny"),
    ("a cookie", {**BEARER, "Cookie": "session=abc"}, ""),
    ("form with a charset", {**BEARER, "Content-Type": FORM["Content-Type"] +
                             "; charset=utf-8"}, ""),
    ("an extra parameter", BEARER, "&note=x"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_the_hooks_checks_answer_the_same(lanes, case):
    """Refused (401), accepted through Flask, or accepted by the lane: the same answer."""
    _name, headers, extra = case
    status = each(lanes, new_request, headers=headers, extra=extra)[0]
    assert status in (200, 401, 400)


BAD_FORMS = [
    ("unknown auth_req_id", "auth_req_id=unknown&action=allow"),
    ("no auth_req_id", "action=allow"),
    ("empty auth_req_id", "auth_req_id=&action=allow"),
    ("bad action", "auth_req_id=x&action=maybe"),
    ("no action", "auth_req_id=x"),
    ("empty body", ""),
    ("oversize body", "auth_req_id=" + "x" * 5000 + "&action=allow"),
    ("body not UTF-8", b"auth_req_id=\xff\xfe&action=allow"),
]


@pytest.mark.parametrize("case", BAD_FORMS, ids=[c[0] for c in BAD_FORMS])
def test_bad_forms_answer_the_same(lanes, case):
    status, _headers, body, _text = both(lanes, PATH, case[1], BEARER)
    assert status in (400, 413) and isinstance(body, dict) and body["error"]


def test_other_ways_in_are_flasks(lanes):
    both(lanes, PATH + "?auth_req_id=x&action=allow", "", BEARER)
    both(lanes, PATH, None, BEARER, method="GET")
    both(lanes, PATH, '{"auth_req_id": "x", "action": "allow"}',
         {**BEARER, "Content-Type": "application/json"})


def test_every_outcome_answers_the_same_and_counts_the_same(lanes):
    """approved, denied (200), already decided (409), expired (410); then the tokens of the
    approved request and the denial's access_denied; then each process's request counters."""
    approved = {op: new_request(op) for op in lanes}
    a, b = (shape(approval(op, approved[op])) for op in lanes)
    assert a == b and a[0] == 200 and a[2] == {"status": "approved"}
    a, b = (shape(approval(op, approved[op], "deny")) for op in lanes)
    assert a == b and a[0] == 409 and a[2] == {"status": "already_decided"}
    tokens = [send(op, "/token", poll_body(approved[op]), KIOSK) for op in lanes]
    assert [t.status_code for t in tokens] == [200, 200]
    assert all(t.json()["id_token"] for t in tokens)

    assert each(lanes, new_request, "deny")[2] == {"status": "denied"}
    denied = {op: new_request(op) for op in lanes}
    for op in lanes:
        assert approval(op, denied[op], "deny").status_code == 200
    a, b = (shape(send(op, "/token", poll_body(denied[op]), KIOSK)) for op in lanes)
    assert a == b and a[2]["error"] == "access_denied"

    expiring = {op: new_request(op, requested_expiry="1") for op in lanes}
    time.sleep(1.5)
    a, b = (shape(approval(op, expiring[op])) for op in lanes)
    assert a == b and a[0] == 410 and a[2] == {"status": "expired"}

    counts = []
    for op in lanes:
        text = requests.get(op.url("/metrics"), timeout=30).text
        counts.append(sorted(line for line in text.splitlines() if re.match(
            r'ciba_http_requests_total\{.*endpoint="testing\.ciba_approval"', line)))
    assert counts[0] and counts[0] == counts[1]
    assert any('status="410"' in line for line in counts[0])


def test_the_lane_decides_and_flask_answers_the_rest(hooked, hook_provider, hook_kiosk):
    """In-process: a well-formed approval never reaches the view, and is recorded as the view
    records it (the decision by "testing", its audit record with the client address); a
    refused or malformed one reaches the view."""
    from server.storage.models import AuditEvent, CibaRequest

    provider, kiosk, bearer = hook_provider, hook_kiosk, {"Authorization": f"Bearer {TOKEN}",
                                                          **FORM}
    http = hooked.test_client()
    reached = []
    view = hooked.view_functions["testing.ciba_approval"]
    hooked.view_functions["testing.ciba_approval"] = lambda: (reached.append(1), view())[1]

    def new() -> str:
        r = http.post("/bc-authorize", data="scope=openid&login_hint=alice",
                      headers=kiosk.basic() | FORM)
        return r.json["auth_req_id"]

    req = new()
    r = http.post(PATH, data=f"auth_req_id={req}&action=allow", headers=bearer,
                  environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert (r.status_code, r.json, reached) == (200, {"status": "approved"}, [])
    assert r.headers["X-Frame-Options"] == "DENY"
    with provider.db.session() as s:
        row = s.scalar(select(CibaRequest).order_by(CibaRequest.created_at.desc()))
        assert (row.status, row.decided_by) == ("approved", "testing")
        event = s.scalar(select(AuditEvent).where(AuditEvent.event == "request_approved"))
        assert (event.actor, event.address, event.client_id) == ("testing", "192.0.2.7", "kiosk")

    r = http.post(PATH, data=f"auth_req_id={new()}&action=allow",
                  headers={"Authorization": "Bearer wrong", **FORM})
    assert r.status_code == 401 and reached == [1]
    r = http.post(PATH, data="auth_req_id=unknown&action=allow", headers=bearer)
    assert r.status_code == 400 and reached == [1, 1]


def test_only_with_the_fast_lane_and_the_token(settings, clock):
    from server import create_app

    def layers(app) -> list:
        found, layer = [], app.wsgi_app
        while layer is not None:
            found.append(type(layer).__name__)
            layer = getattr(layer, "app", None) or getattr(layer, "next", None)
        return found

    assert "ApprovalLane" not in layers(create_app(settings, clock=clock))
    settings.automated_approval_token = APPROVER
    assert "ApprovalLane" in layers(create_app(settings, clock=clock))
    settings.fast_lane = False
    assert "ApprovalLane" not in layers(create_app(settings, clock=clock))


def test_an_unexpected_error_is_the_same_logged_500(settings, clock, caplog, monkeypatch):
    """A decision that fails (a bug, the database gone): both ways in log it and answer the
    same 500 JSON (web/errors.py), with the security headers and no stack trace."""
    from server import create_app
    from server.admin import ClientSpec, add_client, add_user
    from server.web import testing
    from tests.conftest import ClientCreds

    def broken(*args, **kwargs):
        raise RuntimeError("storage is gone")

    settings.automated_approval_token = APPROVER
    answers = []
    for lane in (True, False):
        settings.fast_lane = lane
        app = create_app(settings, clock=clock)  # not TESTING: Flask would re-raise
        provider = app.extensions["ciba"]
        add_user(provider, f"user{lane}", "a-password-123")
        metadata, secret = add_client(provider, ClientSpec(client_id=f"kiosk{lane}"))
        creds = ClientCreds(f"kiosk{lane}", secret, metadata)
        http = app.test_client()
        req = http.post("/bc-authorize", data=f"scope=openid&login_hint=user{lane}",
                        headers=creds.basic() | FORM).json["auth_req_id"]
        monkeypatch.setattr(testing, "decide", broken)
        caplog.clear()
        r = http.post(PATH, data=f"auth_req_id={req}&action=allow", headers=BEARER)
        monkeypatch.undo()
        answers.append((r.status_code, sorted(r.headers.items()), r.data))
        assert any(f"unexpected error on POST {PATH}" in rec.getMessage() and rec.exc_info
                   for rec in caplog.records)
    assert answers[0] == answers[1]
    assert answers[0][0] == 500 and b"server_error" in answers[0][2]
    assert b"storage is gone" not in answers[0][2]
