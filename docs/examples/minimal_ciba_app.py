"""A whole CIBA provider in one file: Flask, Authlib, and server.oauth.ciba_core with in-memory
storage (poll mode). Run it, then ask, decide and poll:

    python docs/examples/minimal_ciba_app.py 5000
    curl -u kiosk:kiosk-secret -d scope=openid -d login_hint=alice -d binding_message=DESK-1 \\
        http://127.0.0.1:5000/bc-authorize
    curl -d approve=yes http://127.0.0.1:5000/device/decide/<id printed by the app>
    curl -u kiosk:kiosk-secret -d grant_type=urn:openid:params:grant-type:ciba \\
        -d auth_req_id=<auth_req_id> http://127.0.0.1:5000/token
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from flask import Flask, jsonify, request

from server.oauth.ciba_core import (
    CIBA_GRANT_TYPE, AuthRequestMixin, BackchannelAuthenticationEndpoint, CibaGrant,
)


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    client_metadata: dict = field(default_factory=lambda: {
        "backchannel_token_delivery_mode": "poll"})

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in ("openid", "profile"))

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == CIBA_GRANT_TYPE


@dataclass
class AuthRequest(AuthRequestMixin):
    client_id: str
    user: dict
    scope: str
    binding_message: str | None
    expires_at: float
    interval: int
    status: str = "pending"
    last_poll: float = 0.0

    def get_client_id(self) -> str:
        return self.client_id

    def get_status(self) -> str:
        return self.status

    def get_expires_at(self) -> float:
        return self.expires_at

    def get_scope(self) -> str:
        return self.scope

    def get_user(self) -> dict:
        return self.user


USERS = {"alice": {"sub": "248289761001", "name": "Alice"}}
CLIENTS = {"kiosk": Client("kiosk", "kiosk-secret")}
REQUESTS: dict[str, AuthRequest] = {}  # by auth_req_id
BY_DEVICE_ID: dict[str, AuthRequest] = {}  # what the authentication device knows
TOKENS: list[dict] = []


class Backchannel(BackchannelAuthenticationEndpoint):
    INTERVAL = 1

    def resolve_login_hint(self, req, login_hint):
        return USERS.get(login_hint)

    def save_authentication_request(self, auth_req_id, req):
        stored = AuthRequest(req.client.client_id, req.user, req.scope, req.binding_message,
                             time.time() + req.expires_in, req.interval)
        REQUESTS[auth_req_id] = stored
        device_id = secrets.token_urlsafe(16)
        BY_DEVICE_ID[device_id] = stored
        return device_id

    def notify_authentication_device(self, auth_req_id, req, device_id):
        # A real provider pushes to the user's phone; this one prints where to answer.
        print(f"ask {req.user['name']} ({req.binding_message}): /device/decide/{device_id}",
              flush=True)


class Grant(CibaGrant):
    def query_auth_request(self, auth_req_id):
        return REQUESTS.get(auth_req_id)

    def should_slow_down(self, auth_request, now):
        too_fast = now - auth_request.last_poll < auth_request.interval
        auth_request.last_poll = now
        return too_fast

    def mark_exchanged(self, auth_request):
        if auth_request.status != "approved":
            return False
        auth_request.status = "exchanged"
        return True


app = Flask(__name__)
server = AuthorizationServer(app, query_client=CLIENTS.get,
                             save_token=lambda token, request: TOKENS.append(token))
server.register_grant(Grant)
server.register_endpoint(Backchannel)


@app.post("/bc-authorize")
def bc_authorize():
    return server.create_endpoint_response("backchannel_authentication")


@app.post("/token")
def issue_token():
    return server.create_token_response()


@app.post("/device/decide/<device_id>")
def decide(device_id):
    """Stands in for the user's authentication device (it would sign its answer)."""
    stored = BY_DEVICE_ID.pop(device_id, None)
    if stored is None or stored.status != "pending":
        return jsonify(error="not_found"), 404
    stored.status = "approved" if request.form.get("approve") == "yes" else "denied"
    return jsonify(status=stored.status)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
