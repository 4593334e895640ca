"""A real provider process on 127.0.0.1 for the device app tests, and a CIBA client for it.

Everything goes through the ``ciba-provider`` command (serve, users add, clients add, devices
enroll), and the client speaks plain HTTP: POST /bc-authorize with client_secret_basic, then
polls /token with the CIBA grant until the device has answered.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
CLIENT_ID, CLIENT_SECRET = "library-kiosk", "kiosk-secret-for-tests-0123456789"
CALL_CENTRE = "call-centre"  # a second client that must send user_code (CIBA §7.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProviderProcess:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.instance = workdir / "instance"
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "provider.log"
        self.log = open(self.log_path, "a")

    def cli(self, *args: str) -> str:
        """Run ``ciba-provider ARGS --instance DIR --issuer URL``; its stdout."""
        command = [sys.executable, "-m", "server.cli", *args, "--instance", str(self.instance),
                   "--issuer", self.issuer]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} failed: {done.stderr[-2000:]}")
        return done.stdout

    def setup(self) -> "ProviderProcess":
        self.cli("users", "add", "alice", "--password", "alice-password-123", "--name", "Alice Liddell",
                 "--email", "alice@example.com")
        self.cli("clients", "add", CLIENT_ID, "--secret", CLIENT_SECRET, "--auth-method",
                 "client_secret_basic", "--delivery-mode", "poll", "--polling-interval", "1",
                 "--scope", "openid email profile", "--name", "Library kiosk")
        self.cli("clients", "add", CALL_CENTRE, "--secret", CLIENT_SECRET, "--auth-method",
                 "client_secret_basic", "--delivery-mode", "poll", "--polling-interval", "1",
                 "--scope", "openid", "--name", "Call centre", "--user-code-required")
        return self

    def start(self) -> "ProviderProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--instance", str(self.instance), "--issuer", self.issuer],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the provider exited; see {self.log_path}")
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the provider did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.log.close()

    # enrollment -------------------------------------------------------------------------
    def enrollment_png(self, path: Path, username: str = "alice") -> str:
        """Make an enrollment QR image; the enrollment link the command printed."""
        out = self.cli("devices", "enroll", username, "--png", str(path))
        return next((w for w in out.split() if w.startswith(("ciba-enroll://", "http"))), "")

    # the consumption device (a CIBA client) ---------------------------------------------
    def bc_authorize_response(self, binding_message: str, scope: str = "openid email",
                              client_id: str = CLIENT_ID, **extra) -> requests.Response:
        data = {"scope": scope, "login_hint": "alice", "binding_message": binding_message, **extra}
        return requests.post(self.issuer + "/bc-authorize", data=data, auth=(client_id, CLIENT_SECRET),
                             timeout=15)

    def bc_authorize(self, binding_message: str, scope: str = "openid email", **extra) -> str:
        response = self.bc_authorize_response(binding_message, scope, **extra)
        assert response.status_code == 200, response.text
        return response.json()["auth_req_id"]

    def token(self, auth_req_id: str) -> tuple[int, dict]:
        response = requests.post(self.issuer + "/token", auth=(CLIENT_ID, CLIENT_SECRET), timeout=15,
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
