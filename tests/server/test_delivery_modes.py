"""Ping (CIBA §10.2) and push (CIBA §10.3, §12) delivery to a real HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.server.ciba_helpers import auth_req_id, decide_request, poll, verify_jwt

from server.oauth.decisions import sweep_expired


@pytest.fixture
def notification_endpoint():
    """A client's notification endpoint: records (Authorization header, JSON body)."""
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((self.headers.get("Authorization"), self.headers.get("Content-Type"),
                          json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_port}/cb"
    yield server
    server.shutdown()


def test_discovery_advertises_all_three_delivery_modes(http):
    modes = http.get("/.well-known/openid-configuration").json[
        "backchannel_token_delivery_modes_supported"]
    assert set(modes) == {"poll", "ping", "push"}


@pytest.mark.parametrize("mode", ["ping", "push"])
def test_ping_and_push_clients_must_send_a_client_notification_token(http, alice, make_client,
                                                                     mode, notification_endpoint):
    creds = make_client(mode, delivery_mode=mode, notification_endpoint=notification_endpoint.url)
    response = http.post("/bc-authorize", data={"scope": "openid", "login_hint": "alice"},
                         headers=creds.basic())
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_ping_mode_notifies_then_the_client_fetches_tokens(http, provider, alice, make_client,
                                                           notification_endpoint):
    creds = make_client("teller", delivery_mode="ping",
                        notification_endpoint=notification_endpoint.url)
    req_id = auth_req_id(http, creds, client_notification_token="ping-token-123")
    decide_request(provider, req_id, approve=True)
    authorization, content_type, body = notification_endpoint.received.get(timeout=5)
    assert authorization == "Bearer ping-token-123"
    assert content_type == "application/json"
    assert body == {"auth_req_id": req_id}  # CIBA §10.2: only the auth_req_id
    response = poll(http, creds, req_id)
    assert response.status_code == 200
    assert response.json["token_type"] == "Bearer"


def test_push_mode_delivers_tokens_bound_to_the_request(http, provider, alice, make_client,
                                                        notification_endpoint):
    creds = make_client("pos", delivery_mode="push",
                        notification_endpoint=notification_endpoint.url)
    req_id = auth_req_id(http, creds, client_notification_token="push-token-456",
                         scope="openid offline_access")
    decide_request(provider, req_id, approve=True)
    authorization, _, body = notification_endpoint.received.get(timeout=5)
    assert authorization == "Bearer push-token-456"
    assert body["auth_req_id"] == req_id
    assert {"access_token", "id_token", "refresh_token", "token_type", "expires_in"} <= set(body)
    claims = verify_jwt(body["id_token"], http.get("/jwks").json, ["RS256"]).claims
    # CIBA §10.3.1: the ID token carries the auth_req_id, at_hash and rt_hash.
    assert claims["urn:openid:params:jwt:claim:auth_req_id"] == req_id
    assert "at_hash" in claims and "urn:openid:params:jwt:claim:rt_hash" in claims
    # Push clients do not poll: the token endpoint refuses (CIBA §10.3).
    assert poll(http, creds, req_id).json["error"] == "unauthorized_client"


@pytest.mark.parametrize("outcome, error", [("deny", "access_denied"), ("expire", "expired_token")])
def test_push_mode_delivers_errors(http, provider, clock, alice, make_client,
                                   notification_endpoint, outcome, error):
    creds = make_client("pos", delivery_mode="push",
                        notification_endpoint=notification_endpoint.url)
    req_id = auth_req_id(http, creds, client_notification_token="push-token-789")
    if outcome == "deny":
        decide_request(provider, req_id, approve=False)
    else:
        clock.advance(provider.settings.ciba_lifetime + 1)
        assert sweep_expired(provider) == 1
    _, _, body = notification_endpoint.received.get(timeout=5)
    assert body["auth_req_id"] == req_id
    assert body["error"] == error  # CIBA §12 push error payload
    assert "access_token" not in body


def test_notification_endpoint_must_be_https_except_on_loopback(make_client):
    from server.admin import AdminError

    with pytest.raises(AdminError):
        make_client("bad", delivery_mode="ping", notification_endpoint="http://example.com/cb")
    make_client("ok", delivery_mode="ping", notification_endpoint="https://example.com/cb")

