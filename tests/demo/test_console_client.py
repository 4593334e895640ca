"""``ciba-client`` against a running provider: approval, denial, expiry and other errors, each
with its output and exit status; ping mode; and the interval / slow_down rule."""

from __future__ import annotations

import json

import pytest
import requests
from joserfc.jwk import RSAKey

from server.demo import console_client
from server.demo.ciba_client import CibaError, Started

from tests.support.provider_process import Process, console_script, free_port

SECRET = "console-client-secret-for-tests"


@pytest.fixture(scope="module")
def registered(provider_process, tmp_path_factory):
    """alice, a secret client, a private_key_jwt client and a ping client."""
    p = provider_process
    p.cli("users", "add", "alice", "--password", "pw-alice", "--name", "Alice Liddell",
          "--email", "alice@example.com")
    p.cli("clients", "add", "console", "--secret", SECRET, "--polling-interval", "1")
    folder = tmp_path_factory.mktemp("keys")
    key = RSAKey.generate_key(2048, parameters={"kid": "console-key-1"})
    (folder / "private.jwk").write_text(json.dumps(key.as_dict(private=True)))
    (folder / "public.jwks").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    p.cli("clients", "add", "console-pkj", "--auth-method", "private_key_jwt",
          "--jwks", str(folder / "public.jwks"), "--polling-interval", "1")
    ping_port = free_port()
    p.cli("clients", "add", "console-ping", "--secret", SECRET, "--delivery-mode", "ping",
          "--notification-endpoint", f"http://127.0.0.1:{ping_port}/cb")
    return {"key_file": str(folder / "private.jwk"), "ping_port": ping_port}


def ciba_client(provider, *args: str) -> Process:
    return Process(console_script("ciba-client", "server.demo.console_client") + [
        "--issuer", provider.issuer, "--login-hint", "alice", *args])


def auth_req_id_of(process: Process) -> str:
    return process.wait_for(r"auth_req_id: (\S+)").group(1)


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["secret", "private_key"])
def test_approval_prints_tokens_and_verified_claims(provider_process, registered, auth):
    creds = (["--client-id", "console", "--secret", SECRET] if auth == "secret" else
             ["--client-id", "console-pkj", "--private-key", registered["key_file"]])
    run = ciba_client(provider_process, *creds, "--binding-message", "DESK-1 · 4KX9")
    provider_process.testing_decision(auth_req_id_of(run), "allow")
    assert run.proc.wait(timeout=30) == console_client.EXIT_OK, run.output
    out = run.output
    assert "with the binding message “DESK-1 · 4KX9”" in out
    assert "Approved." in out and "access_token: ey" in out and "id_token: ey" in out
    assert "ID token claims (signature verified with the provider's JWKS):" in out
    claims = json.loads(out[out.index("{", out.index("ID token claims")):])
    assert claims["iss"] == provider_process.issuer
    assert claims["aud"] == creds[1]


@pytest.mark.slow
def test_denial_exits_3(provider_process, registered):
    run = ciba_client(provider_process, "--client-id", "console", "--secret", SECRET)
    provider_process.testing_decision(auth_req_id_of(run), "deny")
    assert run.proc.wait(timeout=30) == console_client.EXIT_DENIED == 3
    assert "Denied: access_denied: the user denied the request" in run.output
    assert "access_token" not in run.output


@pytest.mark.slow
def test_expiry_exits_4(provider_process, registered):
    run = ciba_client(provider_process, "--client-id", "console", "--secret", SECRET,
                      "--requested-expiry", "2")
    assert run.proc.wait(timeout=30) == console_client.EXIT_EXPIRED == 4
    assert "Expired: expired_token: the request expired before the user decided" in run.output


@pytest.mark.slow
@pytest.mark.parametrize("args, status, text", [
    (["--client-id", "console", "--secret", "wrong"], 1,
     "Error: invalid_client: client authentication failed"),
    (["--client-id", "console", "--secret", SECRET, "--login-hint", "nobody"], 1,
     "Error: unknown_user_id: the provider knows no user by that hint"),
    (["--client-id", "console", "--secret", SECRET, "--binding-message", "x" * 100], 1,
     "Error: invalid_binding_message"),
    (["--client-id", "console", "--secret", SECRET, "--scope", "profile"], 1,
     "Error: invalid_scope"),
])
def test_other_errors_exit_1_with_their_meaning(provider_process, registered, args, status, text):
    run = ciba_client(provider_process, *args)
    assert run.proc.wait(timeout=30) == status
    assert text in run.output
    assert "Traceback" not in run.output


@pytest.mark.slow
def test_unreachable_provider_exits_5():
    run = Process(console_script("ciba-client", "server.demo.console_client") + [
        "--issuer", f"http://127.0.0.1:{free_port()}", "--client-id", "c", "--secret", "s",
        "--login-hint", "alice"])
    assert run.proc.wait(timeout=30) == console_client.EXIT_UNREACHABLE == 5
    assert "Error: transfer_failed" in run.output


@pytest.mark.slow
def test_ping_mode_waits_for_the_notification(provider_process, registered):
    run = ciba_client(provider_process, "--client-id", "console-ping", "--secret", SECRET,
                      "--mode", "ping", "--listen", f"127.0.0.1:{registered['ping_port']}")
    run.wait_for("waiting for the ping at")
    provider_process.testing_decision(auth_req_id_of(run), "allow")
    assert run.proc.wait(timeout=30) == 0, run.output
    assert "Approved." in run.output


class ScriptedClient:
    """Answers token requests from a script; records when each came (in spinner time)."""

    def __init__(self, answers: list) -> None:
        self.answers, self.calls = answers, []

    def token(self, auth_req_id: str) -> dict:
        self.calls.append(auth_req_id)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class RecordingSpinner:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.said: list[str] = []

    def wait(self, seconds: float, until=None) -> None:
        self.waits.append(seconds)

    def say(self, text: str) -> None:
        self.said.append(text)


def test_polling_respects_the_interval_and_slows_down_by_5_seconds():
    client = ScriptedClient([CibaError("authorization_pending"), CibaError("slow_down"),
                             CibaError("authorization_pending"), {"access_token": "at"}])
    spinner = RecordingSpinner()
    tokens = console_client._wait(client, Started("req", 300, 2), spinner, None)
    assert tokens == {"access_token": "at"}
    assert spinner.waits == [2, 2, 7, 7]
    assert any("slow down" in line for line in spinner.said)


@pytest.mark.slow
def test_ctrl_c_cancels_the_request_at_the_provider(provider_process, registered):
    run = ciba_client(provider_process, "--client-id", "console", "--secret", SECRET)
    req = auth_req_id_of(run)
    assert run.interrupt() == console_client.EXIT_INTERRUPTED == 130
    # This provider's alice has no device: the console says where the request went instead.
    assert "no device is set up for them: they answer through the approval link" in run.output
    assert "Interrupted: the request was cancelled at the provider." in run.output
    assert "Traceback" not in run.output
    response = requests.post(provider_process.url("/token"), auth=("console", SECRET), timeout=10,
                             data={"grant_type": "urn:openid:params:grant-type:ciba",
                                   "auth_req_id": req})
    assert response.json()["error"] == "access_denied"
    assert "cancelled" in response.json()["error_description"]
