"""/healthz, /readyz, /metrics (issue 13): who may read them, what they say, and JSON logs."""

from __future__ import annotations

import json
import logging
import re

import pytest

from server.logs import JsonFormatter

from .ciba_helpers import auth_req_id, decide_request

REMOTE = {"REMOTE_ADDR": "203.0.113.5"}


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_healthz_answers_everyone(http):
    for environ in ({}, REMOTE):
        r = http.get("/healthz", environ_base=environ)
        assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_readyz_checks_the_database(http):
    r = http.get("/readyz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ready", "checks": {"database": "ok"}}


def test_readyz_is_503_when_redis_is_unreachable(tmp_path):
    from server import create_app
    from server.config import Settings

    app = create_app(Settings(instance_path=str(tmp_path / "i"), issuer="http://op.test",
                              redis_url="redis://127.0.0.1:1/0"))
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["checks"]["redis"].startswith("unreachable")


def test_readyz_with_a_real_redis(tmp_path, redis_url):
    from server import create_app
    from server.config import Settings

    app = create_app(Settings(instance_path=str(tmp_path / "i"), issuer="http://op.test",
                              redis_url=redis_url))
    r = app.test_client().get("/readyz")
    assert r.status_code == 200 and r.get_json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_from_another_host_without_a_token_setting_it_is_403(http, path):
    r = http.get(path, environ_base=REMOTE)
    assert r.status_code == 403


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_from_another_host_the_bearer_token_opens_it(http, settings, path):
    settings.ops_token = "ops-secret-0123456789"
    assert http.get(path, environ_base=REMOTE).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    r = http.get(path, environ_base=REMOTE, headers=wrong)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    ok = {"Authorization": "Bearer ops-secret-0123456789"}
    assert http.get(path, environ_base=REMOTE, headers=ok).status_code == 200


def test_metrics_count_requests_decisions_and_pending(http, provider, kiosk, alice):
    before = http.get("/metrics").get_data(as_text=True)
    base = _or_zero(before, "ciba_http_requests_total", endpoint="ciba.backchannel_authentication",
                    status="200")
    approved = _or_zero(before, "ciba_decisions_total", outcome="approved")
    ids = [auth_req_id(http, kiosk) for _ in range(3)]
    decide_request(provider, ids[0], approve=True)
    r = http.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    assert metric(text, "ciba_http_requests_total", endpoint="ciba.backchannel_authentication",
                  method="POST", status="200") == base + 3
    assert metric(text, "ciba_decisions_total", outcome="approved") == approved + 1
    assert metric(text, "ciba_pending_requests") == 2
    assert metric(text, "ciba_http_request_duration_seconds_count",
                  endpoint="ciba.backchannel_authentication") >= 3
    assert "ciba_connected_devices" in text
    assert kiosk.secret not in text and ids[1] not in text


def _or_zero(text: str, name: str, **labels) -> float:
    try:
        return metric(text, name, **labels)
    except AssertionError:
        return 0.0


def test_json_log_lines():
    record = logging.LogRecord("server.test", logging.WARNING, __file__, 1, "hello %s", ("you",),
                               None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "server.test"
    assert line["message"] == "hello you" and re.match(r"\d{4}-\d\d-\d\dT", line["time"])
