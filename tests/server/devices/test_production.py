"""WebSockets under the production server (gunicorn's gevent worker), and several provider
processes sharing one database and a Redis bus: an event made in one process reaches a device
connected to another, and a revocation from the CLI drops the socket at once."""

from __future__ import annotations

import pytest

from tests.support.provider_process import ProviderProcess

from .realworld import Phone, bc_authorize, poll_tokens, seed

pytestmark = pytest.mark.slow


def _enroll(op: ProviderProcess, username: str = "alice") -> Phone:
    out = op.cli("devices", "enroll", username)
    uri = next(w for w in out.split() if w.startswith("ciba-enroll://"))
    return Phone(op.issuer).enroll(uri, base=op.url())


def test_flow_under_gunicorn_gevent(tmp_path):
    with ProviderProcess(tmp_path, server="gunicorn") as op:
        seed(op)
        phone = _enroll(op)
        assert phone.connect()["type"] == "hello"
        r = bc_authorize(op.url(), binding_message="GEVENT 1")
        request = phone.receive_type("login_request")["request"]
        assert request["binding_message"] == "GEVENT 1"
        assert phone.decide(request, accept=True).status_code == 200
        assert "access_token" in poll_tokens(op.url(), r.json()["auth_req_id"])
        phone.close()


def test_two_processes_share_events_through_redis(tmp_path, redis_url):
    env = {"CIBA_REDIS_URL": redis_url}
    first = ProviderProcess(tmp_path, env=env, name="first")
    second = ProviderProcess(tmp_path, env=env, name="second", instance=first.instance,
                             issuer=first.issuer)
    with first, second:
        seed(first)
        phone, tablet = _enroll(first), _enroll(first)
        phone.connect(base=first.url())
        tablet.connect(base=first.url())
        # the request is made, and decided, through the second process
        r = bc_authorize(second.url(), binding_message="REDIS 1")
        request = phone.receive_type("login_request")["request"]
        tablet.receive_type("login_request")
        assert phone.decide(request, accept=True, base=second.url()).status_code == 200
        assert tablet.receive_type("request_resolved")["status"] == "approved"
        assert "access_token" in poll_tokens(second.url(), r.json()["auth_req_id"])
        # the CLI publishes the revocation on the bus: the socket drops at once
        second.cli("devices", "revoke", tablet.device_id)
        assert tablet.receive(timeout=1.5) == {"type": "device_revoked"}
        phone.close()
