"""Interoperability: the poll-mode CIBA flow driven by openid-client v6 (npm), an independent
client library, against a real provider process. The testing hook (CIBA_AUTOMATED_APPROVAL_TOKEN)
stands in for the person's Accept or Deny.

Needs Node (>= 20) and npm; `npm ci` installs the locked openid-client. Skipped only when node
is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from tests.support.provider_process import ProviderProcess

HERE = Path(__file__).parent
APPROVAL_TOKEN = "interop-approval-token-4f1c2a9b7e"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]


@pytest.fixture(scope="module")
def node_modules() -> Path:
    npm = shutil.which("npm")
    assert npm, "node is installed but npm is not"
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return HERE / "node_modules"


@pytest.fixture(scope="module")
def provider(tmp_path_factory, node_modules):
    server = ProviderProcess(tmp_path_factory.mktemp("interop"),
                             env={"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL_TOKEN}).start()
    server.alice = server.cli_json("users", "add", "alice", "--password", "alice-pw",
                                   "--name", "Alice Liddell", "--email", "alice@example.com")
    yield server
    server.stop()


def register(provider: ProviderProcess, method: str, tmp_path: Path, name: str = "") -> dict:
    """A client of the given authentication method; returns the env the script needs."""
    client_id = "rp-" + (name or method.replace("_", "-"))
    args = ["clients", "add", client_id, "--auth-method", method, "--polling-interval", "1",
            "--name", "openid-client"]
    env = {"CLIENT_ID": client_id, "AUTH_METHOD": method}
    if method == "private_key_jwt":
        key = RSAKey.generate_key(2048, parameters={"kid": "rp-key", "use": "sig"})
        jwks = tmp_path / "rp-jwks.json"
        jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
        args += ["--jwks", str(jwks)]
        env["CLIENT_PRIVATE_JWK"] = json.dumps(key.as_dict(private=True))
    registered = provider.cli_json(*args)
    if "client_secret" in registered:
        env["CLIENT_SECRET"] = registered["client_secret"]
    return env


def run_flow(provider: ProviderProcess, client_env: dict, scenario: str) -> dict:
    env = {**os.environ, **client_env, "ISSUER": provider.issuer, "LOGIN_HINT": "alice",
           "SCENARIO": scenario, "APPROVAL_TOKEN": APPROVAL_TOKEN}
    result = subprocess.run(["node", str(HERE / "ciba_flow.mjs")], cwd=HERE, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["result"] != "crash", outcome["error"] + "\n" + provider.output[-3000:]
    return outcome


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post",
                                    "client_secret_jwt", "private_key_jwt"])
def test_approval(provider, tmp_path, method):
    outcome = run_flow(provider, register(provider, method, tmp_path), "approve")
    assert outcome["result"] == "tokens", outcome
    assert outcome["interval"] == 1
    claims = outcome["id_token_claims"]  # signature checked by the library against jwks_uri
    assert claims["iss"] == provider.issuer
    assert claims["sub"] == provider.alice["id"]
    assert claims["aud"] == "rp-" + method.replace("_", "-")
    assert outcome["token_type"].lower() == "bearer"
    assert outcome["userinfo"]["preferred_username"] == "alice"
    assert outcome["userinfo"]["email"] == "alice@example.com"


def test_deny(provider, tmp_path):
    outcome = run_flow(provider, register(provider, "client_secret_basic", tmp_path, "deny"),
                       "deny")
    assert outcome["result"] == "error", outcome
    assert outcome["error"] == "access_denied"


def test_slow_down_is_honoured(provider, tmp_path):
    outcome = run_flow(provider, register(provider, "client_secret_basic", tmp_path, "slow"),
                       "slow_down")
    assert outcome["result"] == "tokens", outcome
    polls = outcome["token_requests"]
    rogue, slowed, *after = polls
    assert rogue["by"] == "rogue" and rogue["error"] == "authorization_pending"
    assert slowed["by"] == "library" and slowed["error"] == "slow_down"
    # the library waited the new interval (1 s + 5 s) and the provider was content with that
    assert after and after[0]["status"] == 200, polls
    assert after[0]["at"] - slowed["at"] >= 6000 - 50


def test_a_client_registered_with_rfc_7591_completes_a_ciba_flow(provider):
    """openid-client registers itself (dynamicClientRegistration with the initial access token
    that ``ciba-provider clients registration-token`` prints last), then runs a CIBA flow."""
    token = provider.cli("clients", "registration-token", "--single-use").strip().splitlines()[-1]
    env = {**os.environ, "ISSUER": provider.issuer, "INITIAL_ACCESS_TOKEN": token,
           "APPROVAL_TOKEN": APPROVAL_TOKEN, "LOGIN_HINT": "alice"}
    result = subprocess.run(["node", str(HERE / "register_flow.mjs")], cwd=HERE, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["result"] == "tokens", outcome
    assert outcome["registered"] == {
        "delivery_mode": "poll", "auth_method": "client_secret_post", "has_secret": True,
        "registration_client_uri": f"{provider.issuer}/register/{outcome['client_id']}"}
    assert outcome["id_token_claims"]["aud"] == outcome["client_id"]
    assert outcome["id_token_claims"]["sub"] == provider.alice["id"]
    assert (outcome["read_status"], outcome["read_client_name"]) == (
        200, "openid-client (self-registered)")


def test_signed_request_with_private_key_jwt(provider, tmp_path):
    """CIBA §7.1.1: openid-client's request object (oauth4webapi issueRequestObject)."""
    env = register(provider, "private_key_jwt", tmp_path, "signed")
    outcome = run_flow(provider, {**env, "SIGNED_REQUEST": "1"}, "approve")
    assert outcome["result"] == "tokens", outcome
    header, claims = (json.loads(_b64decode(part)) for part in
                      outcome["request_object"].split(".")[:2])
    assert claims["iss"] == env["CLIENT_ID"] and claims["aud"] == provider.issuer
    assert claims["login_hint"] == "alice" and {"exp", "nbf", "iat", "jti"} <= set(claims)
    assert outcome["userinfo"]["preferred_username"] == "alice"


@pytest.fixture(scope="module")
def tls_provider(tmp_path_factory, node_modules, pki):
    from tests.support.tls_provider import TlsProviderProcess

    server = TlsProviderProcess(tmp_path_factory.mktemp("interop-tls"), pki,
                                env={"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL_TOKEN}).start()
    server.cli_json("users", "add", "alice", "--password", "alice-pw", "--email",
                    "alice@example.com")
    yield server
    server.stop()


def test_mtls_flow_with_a_certificate_bound_token(tls_provider, pki):
    """RFC 8705 with openid-client's TlsClientAuth and an undici Agent holding the certificate."""
    tls_provider.cli_json("clients", "add", "rp-mtls", "--auth-method", "tls_client_auth",
                          "--tls-subject-dn", "CN=rp-mtls,O=Example", "--polling-interval", "1")
    cert, key = pki.client("rp-mtls")
    outcome = run_flow(tls_provider, {"CLIENT_ID": "rp-mtls", "AUTH_METHOD": "tls_client_auth",
                                      "CA_CERT": str(pki.ca), "CLIENT_CERT": str(cert),
                                      "CLIENT_KEY": str(key)}, "approve")
    assert outcome["result"] == "tokens", outcome
    assert outcome["userinfo"]["preferred_username"] == "alice"
    claims = json.loads(_b64decode(outcome["access_token"].split(".")[1]))
    assert set(claims["cnf"]) == {"x5t#S256"}
    refused = outcome["userinfo_without_certificate"]
    assert refused["status"] == 401 and refused["body"]["error"] == "invalid_token"


def _b64decode(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
