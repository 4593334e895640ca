"""A client's keys published at its jwks_uri (RFC 7591 §2) rather than registered inline: used
for private_key_jwt and signed requests, and fetched again when the client rotates its key."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from server.admin import AdminError

from .ciba_helpers import assertion_form, client_assertion, public_jwks, rsa_client_key
from .test_request_objects import ISSUER, request_object


@pytest.fixture
def jwks_server():
    published = {"doc": {"keys": []}, "fetches": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            published["fetches"] += 1
            raw = json.dumps(published["doc"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    published["url"] = f"http://127.0.0.1:{server.server_port}/jwks.json"
    yield published
    server.shutdown()
    server.server_close()


def test_private_key_jwt_and_signed_requests_with_a_jwks_uri(http, provider, clock, alice,
                                                            make_client, jwks_server):
    old, new = rsa_client_key("k1"), rsa_client_key("k2")
    jwks_server["doc"] = public_jwks(old)
    make_client("remote", auth_method="private_key_jwt", jwks_uri=jwks_server["url"])
    provider.jwks_cache.min_refresh = 0  # let the test rotate without waiting

    def bc(key):
        auth = assertion_form(client_assertion("remote", key, ISSUER, now=clock.now()))
        return http.post("/bc-authorize", data={
            **auth, "request": request_object(clock, key, client_id="remote")})

    assert bc(old).status_code == 200
    jwks_server["doc"] = public_jwks(new)  # the client rotates its key
    # The request object names a kid the cached set lacks: the set is fetched again.
    response = http.post("/bc-authorize", headers={}, data={
        **assertion_form(client_assertion("remote", old, ISSUER, now=clock.now())),
        "request": request_object(clock, new, client_id="remote")})
    assert response.status_code == 200, response.json
    assert jwks_server["fetches"] >= 2


def test_a_client_assertion_with_a_rotated_key_is_accepted(http, provider, clock, alice,
                                                          make_client, jwks_server):
    """private_key_jwt (RFC 7523 §3) signed with a key published after the provider fetched
    the set: the unknown kid makes it fetch again, as for request objects."""
    old, new, never = rsa_client_key("k1"), rsa_client_key("k2"), rsa_client_key("k3")
    jwks_server["doc"] = public_jwks(old)
    make_client("remote", auth_method="private_key_jwt", jwks_uri=jwks_server["url"])
    provider.jwks_cache.min_refresh = 0

    def bc(key):
        return http.post("/bc-authorize", data={
            **assertion_form(client_assertion("remote", key, ISSUER, now=clock.now())),
            "scope": "openid", "login_hint": "alice"})

    assert bc(old).status_code == 200
    jwks_server["doc"] = public_jwks(new)
    assert bc(new).status_code == 200, "the rotated key was not fetched"
    r = bc(never)
    assert (r.status_code, r.json["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("uri", ["http://example.com/jwks", "ftp://127.0.0.1/jwks", "not a url"])
def test_jwks_uri_must_be_https(make_client, uri):
    with pytest.raises(AdminError, match="jwks_uri"):
        make_client("remote", auth_method="private_key_jwt", jwks_uri=uri)
