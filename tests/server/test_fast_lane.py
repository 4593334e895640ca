"""The fast lane (server/web/fast_lane.py) answers POST /token and POST /bc-authorize exactly as
Flask does: the same matrix of requests, over real HTTP, to a provider with the lane and one
without it (CIBA_FAST_LANE=false), sharing one instance; status, headers (but Date) and bodies
compared, random values (auth_req_id, tokens) by shape. Then each process's request counters.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import requests

from tests.support.provider_process import ProviderProcess

CIBA = "urn:openid:params:grant-type:ciba"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
APPROVER = "fast-lane-approver-token"
#: Values that differ between two equal answers; the rest of the body is compared as is.
RANDOM = ("auth_req_id", "access_token", "id_token", "refresh_token")


def basic(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": "Basic " + raw, **FORM}


@pytest.fixture(scope="module")
def lanes(tmp_path_factory):
    """(fast, flask): two gunicorn gevent workers on one instance, the lane on and off."""
    root = tmp_path_factory.mktemp("fast-lane")
    instance = root / "instance"
    env = {"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVER, "CIBA_MAX_BODY_BYTES": "4096",
           "CIBA_MAX_PENDING_PER_USER": "0"}  # the matrix makes many; test_limits has the 429
    fast = ProviderProcess(root / "fast", instance=instance, server="gunicorn",
                           env={**env, "CIBA_FAST_LANE": "true"}, name="fast")
    fast.cli("users", "add", "alice", "--password", "alice-password-1")
    fast.cli("clients", "add", "kiosk", "--secret", "kiosk-secret-0123456789")
    fast.cli("clients", "add", "poster", "--secret", "poster-secret-0123456789",
             "--auth-method", "client_secret_post")
    fast.cli("clients", "add", "machine", "--secret", "machine-secret-0123456789",
             "--grant-type", "client_credentials")
    slow = ProviderProcess(root / "flask", instance=instance, server="gunicorn",
                           env={**env, "CIBA_FAST_LANE": "false"}, name="flask",
                           issuer=fast.issuer)
    fast.start()
    slow.start()
    try:
        yield fast, slow
    finally:
        fast.stop()
        slow.stop()


KIOSK = basic("kiosk", "kiosk-secret-0123456789")
BC = "scope=openid&login_hint=alice"


def send(op: ProviderProcess, path: str, data, headers: dict | None = None,
         method: str = "POST") -> requests.Response:
    return requests.request(method, op.url(path), data=data, headers=headers or {},
                            timeout=30)


def shape(response: requests.Response) -> tuple:
    """What must be equal: the status, the headers but Date (and Content-Length where a random
    value of varying length is in the body), the body with random values reduced to a shape."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    randoms = False
    if isinstance(body, dict):
        for key in RANDOM:
            if isinstance(body.get(key), str):
                body[key] = f"<{len(body[key]) if key == 'auth_req_id' else 'token'}>"
                randoms = randoms or key != "auth_req_id"
    headers = [(k, v) for k, v in response.headers.items()
               if k.lower() not in ("date",) and not (randoms and k.lower() == "content-length")]
    return response.status_code, headers, body, response.text if not isinstance(body, dict) \
        else None


def both(lanes, path: str, data, headers: dict | None = None, method: str = "POST") -> tuple:
    fast, slow = lanes
    a, b = shape(send(fast, path, data, headers, method)), shape(send(slow, path, data, headers,
                                                                      method))
    assert a == b, f"{method} {path} {data!r}:\nfast lane: {a}\nflask:     {b}"
    return a


def new_request(op: ProviderProcess, **extra) -> str:
    body = BC + "".join(f"&{k}={v}" for k, v in extra.items())
    r = send(op, "/bc-authorize", body, KIOSK)
    assert r.status_code == 200, r.text
    return r.json()["auth_req_id"]


def poll_body(auth_req_id: str) -> str:
    return f"grant_type={CIBA}&auth_req_id={auth_req_id}"


BC_MATRIX = [
    ("success, client_secret_basic", BC, KIOSK),
    ("success, client_secret_post", BC + "&client_id=poster&client_secret="
                                         "poster-secret-0123456789", FORM),
    ("success with binding message and expiry", BC + "&binding_message=W4SK&requested_expiry=60",
     KIOSK),
    ("invalid_client: wrong secret", BC, basic("kiosk", "wrong")),
    ("invalid_client: unknown client", BC, basic("nobody", "whatever")),
    ("invalid_client: malformed Basic", BC, {"Authorization": "Basic !!!", **FORM}),
    ("invalid_client: no authentication", BC, FORM),
    ("invalid_client: post client sending Basic", BC, basic("poster", "poster-secret-0123456789")),
    ("unauthorized_client", BC, basic("machine", "machine-secret-0123456789")),
    ("invalid_request: no scope", "login_hint=alice", KIOSK),
    ("invalid_scope: no openid", "scope=profile&login_hint=alice", KIOSK),
    ("unknown_user_id", "scope=openid&login_hint=nobody", KIOSK),
    ("invalid_request: two hints", BC + "&id_token_hint=x", KIOSK),
    ("invalid_request: bad requested_expiry", BC + "&requested_expiry=-3", KIOSK),
    ("invalid_binding_message", BC + "&binding_message=" + "x" * 300, KIOSK),
    ("invalid_request: bad authorization_details", BC + "&authorization_details=%5B1%5D", KIOSK),
    ("duplicate parameter", BC + "&scope=openid", KIOSK),
    ("parameter in the URL", BC, KIOSK, "/bc-authorize?scope=openid"),
    ("JSON body", json.dumps({"scope": "openid", "login_hint": "alice"}),
     {**KIOSK, "Content-Type": "application/json"}),
    ("form with a charset", BC, {**KIOSK, "Content-Type": FORM["Content-Type"] +
                                 "; charset=utf-8"}),
    ("body not UTF-8", b"scope=openid&login_hint=\xff\xfe", KIOSK),
    ("empty body", "", KIOSK),
    ("oversize body", BC + "&binding_message=" + "y" * 5000, KIOSK),
    ("a cookie", BC, {**KIOSK, "Cookie": "session=abc"}),
]


@pytest.mark.parametrize("case", BC_MATRIX, ids=[c[0] for c in BC_MATRIX])
def test_bc_authorize_answers_the_same(lanes, case):
    _name, data, headers, *path = case
    both(lanes, path[0] if path else "/bc-authorize", data, headers)


def test_other_methods_and_paths_are_flasks(lanes):
    both(lanes, "/bc-authorize", None, KIOSK, method="GET")
    both(lanes, "/token", None, KIOSK, method="PUT")
    both(lanes, "/token/", poll_body("x"), KIOSK)


TOKEN_MATRIX = [
    ("invalid_grant: unknown auth_req_id", poll_body("unknown"), KIOSK),
    ("invalid_request: no auth_req_id", f"grant_type={CIBA}", KIOSK),
    ("invalid_request: no grant_type", "auth_req_id=x", KIOSK),
    ("unsupported_grant_type", "grant_type=password&username=a&password=b", KIOSK),
    ("invalid_client: wrong secret", poll_body("x"), basic("kiosk", "wrong")),
    ("invalid_client: unknown client", poll_body("x"), basic("nobody", "x")),
    ("invalid_client: none", poll_body("x"), FORM),
    ("unauthorized_client", poll_body("x"), basic("machine", "machine-secret-0123456789")),
    ("duplicate parameter", poll_body("x") + "&auth_req_id=y", KIOSK),
    ("parameter in the URL", poll_body("x"), KIOSK, "/token?auth_req_id=x"),
    ("JSON body", json.dumps({"grant_type": CIBA, "auth_req_id": "x"}),
     {**KIOSK, "Content-Type": "application/json"}),
    ("oversize body", poll_body("x" * 5000), KIOSK),
    ("body not UTF-8", poll_body("x").encode() + b"\xff", KIOSK),
]


@pytest.mark.parametrize("case", TOKEN_MATRIX, ids=[c[0] for c in TOKEN_MATRIX])
def test_token_errors_answer_the_same(lanes, case):
    _name, data, headers, *path = case
    both(lanes, path[0] if path else "/token", data, headers)


def test_a_request_polled_through_its_life_answers_the_same(lanes):
    """pending, slow_down, approved (tokens), replayed; denied; expired; another client's."""
    fast, slow = lanes
    ids = {op: new_request(op) for op in lanes}
    steps = []
    for op in lanes:
        r = send(op, "/token", poll_body(ids[op]), KIOSK)
        steps.append([shape(r)])
        steps[-1].append(shape(send(op, "/token", poll_body(ids[op]), KIOSK)))  # too soon
        approve(op, ids[op], "allow")
        steps[-1].append(shape(send(op, "/token", poll_body(ids[op]), KIOSK)))
        steps[-1].append(shape(send(op, "/token", poll_body(ids[op]), KIOSK)))  # replay
    fast_steps, slow_steps = steps
    assert [s[2]["error"] if isinstance(s[2], dict) and "error" in s[2] else s[0]
            for s in fast_steps] == ["authorization_pending", "slow_down", 200, "invalid_grant"]
    assert fast_steps == slow_steps
    assert fast_steps[2][2]["id_token"] == "<token>" and fast_steps[2][2]["token_type"] == "Bearer"

    denied = {op: new_request(op) for op in lanes}
    for op in lanes:
        approve(op, denied[op], "deny")
    a, b = (shape(send(op, "/token", poll_body(denied[op]), KIOSK)) for op in lanes)
    assert a == b and a[2]["error"] == "access_denied"

    expiring = {op: new_request(op, requested_expiry="1") for op in lanes}
    time.sleep(1.5)
    a, b = (shape(send(op, "/token", poll_body(expiring[op]), KIOSK)) for op in lanes)
    assert a == b and a[2]["error"] == "expired_token"

    # another client polling kiosk's request
    other = {"Content-Type": FORM["Content-Type"]}
    theirs = {op: new_request(op) for op in lanes}
    a, b = (shape(send(op, "/token", poll_body(theirs[op]) + "&client_id=poster&client_secret="
                       "poster-secret-0123456789", other)) for op in lanes)
    assert a == b and a[2]["error"] == "invalid_grant"


def approve(op: ProviderProcess, auth_req_id: str, action: str) -> None:
    r = requests.post(op.url("/testing/ciba-approval"),
                      data={"auth_req_id": auth_req_id, "action": action},
                      headers={"Authorization": f"Bearer {APPROVER}"}, timeout=30)
    assert r.status_code == 200, r.text


def test_both_lanes_count_the_same_requests(lanes):
    """The metrics the Flask lane records (ciba_http_requests_total by endpoint, method,
    status) are recorded the same by the lane, after the whole matrix above."""
    counts = []
    for op in lanes:
        text = requests.get(op.url("/metrics"), timeout=30).text
        counts.append(sorted(line for line in text.splitlines()
                             if re.match(r'ciba_http_requests_total\{.*endpoint="ciba\.', line)))
    assert counts[0] and counts[0] == counts[1]
    assert any('status="400"' in line and "ciba.token" in line for line in counts[0])


def test_the_lane_serves_these_routes_and_flask_the_rest(app, http, kiosk, alice):
    """In-process: with the lane on, the Flask views of /token and /bc-authorize are not
    reached for what the lane handles, and are for what it hands over."""
    reached = []
    for endpoint in ("ciba.token", "ciba.backchannel_authentication"):
        view = app.view_functions[endpoint]
        app.view_functions[endpoint] = (lambda v, e: lambda **kw: (reached.append(e), v())[1])(
            view, endpoint)
    r = http.post("/bc-authorize", data=BC, headers=kiosk.basic() | FORM)
    assert r.status_code == 200
    r = http.post("/token", data=poll_body(r.json["auth_req_id"]), headers=kiosk.basic() | FORM)
    assert r.json["error"] == "authorization_pending" and reached == []
    r = http.post("/token", data=poll_body("x") + "&auth_req_id=y", headers=kiosk.basic() | FORM)
    assert r.json["error"] == "invalid_request" and reached == ["ciba.token"]
    http.set_cookie("a", "b")  # Flask may refresh a session cookie: Flask's to answer
    r = http.post("/bc-authorize", data=BC, headers=kiosk.basic() | FORM)
    assert r.status_code == 200 and reached == ["ciba.token", "ciba.backchannel_authentication"]


def test_the_setting_turns_the_lane_off(settings, clock):
    from server import create_app
    from server.web.fast_lane import FastLane

    def lanes(app) -> list:
        found, layer = [], app.wsgi_app
        while layer is not None:
            found.append(type(layer).__name__)
            layer = getattr(layer, "app", None) or getattr(layer, "next", None)
        return found

    assert "FastLane" in lanes(create_app(settings, clock=clock))
    settings.fast_lane = False
    assert "FastLane" not in lanes(create_app(settings, clock=clock))
    assert FastLane  # the module imports on its own


def test_an_unexpected_error_is_the_same_logged_500(settings, clock, caplog):
    """Not an OAuth error (a bug, the database gone): both lanes log it and answer the same
    500 JSON (web/errors.py), with the security headers and no stack trace."""
    from server import create_app
    from server.admin import add_user

    answers = []
    for lane in (True, False):
        settings.fast_lane = lane
        app = create_app(settings, clock=clock)  # not TESTING: Flask would re-raise
        add_user(app.extensions["ciba"], f"user{lane}", "a-password-123")

        def broken(*args, **kwargs):
            raise RuntimeError("storage is gone")

        app.extensions["ciba"].authorization.token_response_parts = broken
        caplog.clear()
        r = app.test_client().post("/token", data=poll_body("x"), headers=FORM)
        answers.append((r.status_code, sorted(r.headers.items()), r.data))
        assert any("unexpected error on POST /token" in rec.getMessage()
                   and rec.exc_info for rec in caplog.records)
    assert answers[0] == answers[1]
    assert answers[0][0] == 500 and b"server_error" in answers[0][2]
    assert b"storage is gone" not in answers[0][2]


def test_the_lanes_form_parser_is_parse_qsl():
    """The lane splits a body with nothing to unquote itself: the same pairs as parse_qsl (with
    werkzeug's errors), for bodies with and without escapes, empty parts and bare names."""
    import random
    from urllib.parse import parse_qsl

    from werkzeug import urls  # noqa: F401 (registers parse_qsl's errors=)

    from server.web.fast_lane import FastLane

    lane = FastLane.__new__(FastLane)
    lane.max_parts = 1000
    rng = random.Random(9)
    bodies = ["", "&", "=", "a", "a=", "=b", "a==b", "a=b&&c=d&", "a=b=c", "scope=openid&x"]
    bodies += ["".join(rng.choice("ab=&%+2fé ") for _ in range(rng.randrange(12)))
               for _ in range(3000)]
    for body in bodies:
        try:
            expected = parse_qsl(body, keep_blank_values=True, errors="werkzeug.url_quote")
        except ValueError:
            expected = None
        form = lane._parse(body.encode())
        if expected is None or len(dict(expected)) != len(expected):
            assert form is None, body
        else:
            assert form is not None and list(form.items()) == expected, body
