"""The shared real provider process (tests/support/provider_process.py) seeded for the device
app tests, and a CIBA client for it.

Setup goes through the ``ciba-provider`` command (users add, clients add, devices enroll), and
the client speaks plain HTTP: POST /bc-authorize with client_secret_basic, then polls /token
with the CIBA grant until the device has answered. The provider's output is ``provider.log`` in
its work folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.provider_process import ProviderProcess as SharedProviderProcess

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
CLIENT_ID, CLIENT_SECRET = "library-kiosk", "kiosk-secret-for-tests-0123456789"
CALL_CENTRE = "call-centre"  # a second client that must send user_code (CIBA §7.1)


class ProviderProcess(SharedProviderProcess):
    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, env=env)
        self.log_path = self.workdir / "provider.log"

    def setup(self) -> "ProviderProcess":
        """User alice, the poll-mode kiosk client and the call centre (which needs user_code)."""
        self.cli("users", "add", "alice", "--password", "alice-password-123", "--name", "Alice Liddell",
                 "--email", "alice@example.com")
        poll_client = ("--secret", CLIENT_SECRET, "--auth-method", "client_secret_basic",
                       "--delivery-mode", "poll", "--polling-interval", "1")
        self.cli("clients", "add", CLIENT_ID, *poll_client, "--scope", "openid email profile",
                 "--name", "Library kiosk")
        self.cli("clients", "add", CALL_CENTRE, *poll_client, "--scope", "openid",
                 "--name", "Call centre", "--user-code-required")
        return self

    # enrollment -------------------------------------------------------------------------
    def enrollment_png(self, path: Path, username: str = "alice") -> str:
        """Make an enrollment QR image; the enrollment link the command printed."""
        out = self.cli("devices", "enroll", username, "--png", str(path))
        return next((w for w in out.split() if w.startswith(("ciba-enroll://", "http"))), "")

    # the consumption device (a CIBA client) ---------------------------------------------
    def bc_authorize_response(self, binding_message: str, scope: str = "openid email",
                              client_id: str = CLIENT_ID, **extra) -> requests.Response:
        data = {"scope": scope, "login_hint": "alice", "binding_message": binding_message, **extra}
        return requests.post(self.url("/bc-authorize"), data=data, auth=(client_id, CLIENT_SECRET),
                             timeout=15)

    def bc_authorize(self, binding_message: str, scope: str = "openid email", **extra) -> str:
        response = self.bc_authorize_response(binding_message, scope, **extra)
        assert response.status_code == 200, response.text
        return response.json()["auth_req_id"]

    def bc_cancel(self, auth_req_id: str) -> requests.Response:
        """The client cancels its request (POST /bc-cancel, docs/device-protocol.md)."""
        return requests.post(self.url("/bc-cancel"), data={"auth_req_id": auth_req_id},
                             auth=(CLIENT_ID, CLIENT_SECRET), timeout=15)

    def token(self, auth_req_id: str) -> tuple[int, dict]:
        response = requests.post(self.url("/token"), auth=(CLIENT_ID, CLIENT_SECRET), timeout=15,
                                 data={"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id})
        return response.status_code, response.json()

    def poll_tokens(self, auth_req_id: str, timeout: float = 30) -> tuple[int, dict]:
        """Poll /token like a client (every interval, slowing down when told) until answered."""
        interval, deadline = 1.0, time.monotonic() + timeout
        while True:
            status, body = self.token(auth_req_id)
            error = body.get("error")
            if error == "slow_down":
                interval += 1
            elif error != "authorization_pending":
                return status, body
            if time.monotonic() > deadline:
                return status, body
            time.sleep(interval)
