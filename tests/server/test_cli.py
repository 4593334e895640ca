"""The ``ciba-provider`` command: users, clients (printed as JSON), keys, and --instance."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from server import create_app
from server.cli import main as cli
from server.config import Settings

from .ciba_helpers import assert_error, public_jwks, rsa_client_key

CIBA = "urn:openid:params:grant-type:ciba"


@pytest.fixture
def instance(tmp_path) -> str:
    return str(tmp_path / "inst")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def app_on(instance: str, clock):
    app = create_app(Settings(instance_path=instance, issuer="http://op.test"), clock=clock)
    return app.test_client()


def basic(client_id: str, secret: str) -> dict:
    import base64
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_users_add_and_list(capsys, instance):
    user = run_json(capsys, "users", "add", "alice", "--password", "pw-alice", "--name", "Alice",
                    "--email", "alice@example.com", "--instance", instance)
    assert user["username"] == "alice" and user["email"] == "alice@example.com" and user["id"]
    assert "pw-alice" not in json.dumps(user)
    listed = run_json(capsys, "users", "list", "--instance", instance)
    assert [u["username"] for u in listed] == ["alice"]


def test_duplicate_user_is_a_clear_error(capsys, instance):
    run_json(capsys, "users", "add", "alice", "--password", "x", "--instance", instance)
    code, out, err = run(capsys, "users", "add", "alice", "--password", "y", "--instance", instance)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err


def test_clients_add_defaults(capsys, instance):
    client = run_json(capsys, "clients", "add", "kiosk", "--instance", instance)
    assert client["client_id"] == "kiosk"
    assert client["token_endpoint_auth_method"] == "client_secret_basic"
    assert client["grant_types"] == [CIBA, "refresh_token"]
    assert client["backchannel_token_delivery_mode"] == "poll"
    assert len(client["client_secret"]) >= 32  # generated, printed once
    listed = run_json(capsys, "clients", "list", "--instance", instance)
    assert "client_secret" not in listed[0]
    assert client["client_secret"] not in json.dumps(listed)


def test_clients_add_options(capsys, instance):
    client = run_json(capsys, "clients", "add", "desk", "--secret", "desk-secret-123",
                      "--auth-method", "client_secret_post", "--polling-interval", "7",
                      "--ciba-lifetime", "90", "--scope", "openid profile", "--name", "Front desk",
                      "--id-token-alg", "ES256", "--instance", instance)
    assert client["client_secret"] == "desk-secret-123"
    assert client["token_endpoint_auth_method"] == "client_secret_post"
    assert client["polling_interval"] == 7 and client["ciba_lifetime"] == 90
    assert client["scope"] == "openid profile" and client["client_name"] == "Front desk"
    assert client["id_token_signed_response_alg"] == "ES256"


def test_registered_client_works_with_the_provider(capsys, instance, clock):
    run_json(capsys, "users", "add", "alice", "--password", "pw", "--instance", instance)
    run_json(capsys, "clients", "add", "kiosk", "--secret", "kiosk-secret", "--polling-interval",
             "3", "--instance", instance)
    http = app_on(instance, clock)
    response = http.post("/bc-authorize", headers=basic("kiosk", "kiosk-secret"),
                         data={"scope": "openid", "login_hint": "alice"})
    assert response.status_code == 200, response.json
    assert response.json["interval"] == 3


def test_client_credentials_only_client(capsys, instance, clock):
    run_json(capsys, "users", "add", "alice", "--password", "pw", "--instance", instance)
    client = run_json(capsys, "clients", "add", "machine", "--secret", "m-secret",
                      "--grant-type", "client_credentials", "--instance", instance)
    assert client["grant_types"] == ["client_credentials"]
    response = app_on(instance, clock).post("/bc-authorize", headers=basic("machine", "m-secret"),
                                            data={"scope": "openid", "login_hint": "alice"})
    assert_error(response, 400, "unauthorized_client")


def test_private_key_jwt_client(capsys, instance, tmp_path):
    jwks_file = tmp_path / "client-jwks.json"
    jwks_file.write_text(json.dumps(public_jwks(rsa_client_key())))
    client = run_json(capsys, "clients", "add", "pkj", "--auth-method", "private_key_jwt",
                      "--jwks", str(jwks_file), "--instance", instance)
    assert "client_secret" not in client
    assert client["jwks"]["keys"][0]["kid"] == "client-rsa"


@pytest.mark.parametrize("argv", [
    pytest.param(["--auth-method", "private_key_jwt"], id="private-key-jwt-without-jwks"),
    pytest.param(["--auth-method", "private_key_jwt", "--jwks", "/nonexistent.json"],
                 id="unreadable-jwks"),
    pytest.param(["--polling-interval", "0"], id="zero-interval"),
    pytest.param(["--scope", "openid admin"], id="unknown-scope"),
    pytest.param(["--delivery-mode", "ping"], id="ping-without-endpoint"),
])
def test_clients_add_mistakes(capsys, instance, argv):
    code, out, err = run(capsys, "clients", "add", "c", *argv, "--instance", instance)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err


def test_clients_remove(capsys, instance):
    run_json(capsys, "clients", "add", "kiosk", "--instance", instance)
    code, out, _ = run(capsys, "clients", "remove", "kiosk", "--instance", instance)
    assert code == 0 and "removed" in out
    assert run_json(capsys, "clients", "list", "--instance", instance) == []
    code, _, err = run(capsys, "clients", "remove", "kiosk", "--instance", instance)
    assert code == 2 and "no client" in err


def test_instances_are_separate(capsys, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    run_json(capsys, "clients", "add", "only-in-one", "--instance", one)
    assert run_json(capsys, "clients", "list", "--instance", two) == []
    assert [c["client_id"] for c in run_json(capsys, "clients", "list", "--instance", one)] == \
        ["only-in-one"]


def test_instance_from_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CIBA_INSTANCE_PATH", str(tmp_path / "env-inst"))
    run_json(capsys, "users", "add", "carol", "--password", "pw")
    assert (tmp_path / "env-inst" / "provider.db").exists()


def test_keys_list(capsys, instance):
    jwks = run_json(capsys, "keys", "list", "--instance", instance)
    assert {k["kty"] for k in jwks["keys"]} == {"RSA", "EC"}
    assert all("d" not in k for k in jwks["keys"])


def test_keys_retire_unpublishes_an_old_key_but_not_one_that_signs(capsys, instance):
    old = {k["kid"] for k in run_json(capsys, "keys", "list", "--instance", instance)["keys"]}
    code, _, err = run(capsys, "keys", "retire", sorted(old)[0], "--instance", instance)
    assert code == 2 and "signs tokens now" in err
    assert run(capsys, "keys", "rotate", "--publish-ahead", "0", "--instance", instance)[0] == 0
    kid = sorted(old)[0]
    code, out, _ = run(capsys, "keys", "retire", kid, "--instance", instance)
    assert code == 0 and f"retired key {kid}" in out
    published = {k["kid"] for k in run_json(capsys, "keys", "list", "--instance", instance)["keys"]}
    assert kid not in published and len(published) == 3
    assert run(capsys, "keys", "retire", "nope", "--instance", instance)[0] == 2


def test_console_script_is_installed(tmp_path):
    result = subprocess.run(["ciba-provider", "users", "list", "--instance", str(tmp_path / "i")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_module_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "server.cli", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "serve" in result.stdout


def test_grant_types_the_provider_does_not_implement_are_refused(capsys, instance):
    with pytest.raises(SystemExit) as exit_:
        cli(["clients", "add", "legacy", "--grant-type", "password", "--instance", instance])
    assert exit_.value.code == 2
    assert "invalid choice: 'password'" in capsys.readouterr().err


def test_certs_and_mutual_tls_clients(capsys, instance, tmp_path):
    certs_dir = tmp_path / "certs"
    made = run_json(capsys, "certs", "--dir", str(certs_dir), "--server-host", "localhost",
                    "--server-host", "127.0.0.1", "--client", "console", "--self-signed", "till")
    assert made["clients"][0]["tls_subject_dn"] == "CN=console,O=Example"
    assert (certs_dir / "ca.pem").exists() and (certs_dir / "server.pem").exists()
    assert oct((certs_dir / "console-key.pem").stat().st_mode & 0o777) == "0o600"
    console = run_json(capsys, "clients", "add", "console", "--auth-method", "tls_client_auth",
                       "--tls-subject-dn", made["clients"][0]["tls_subject_dn"],
                       "--instance", instance)
    assert console["tls_client_auth_subject_dn"] == "CN=console,O=Example"
    assert console["tls_client_certificate_bound_access_tokens"] is True
    assert "client_secret" not in console
    till = run_json(capsys, "clients", "add", "till", "--auth-method",
                    "self_signed_tls_client_auth", "--jwks", made["self_signed"][0]["jwks"],
                    "--instance", instance)
    assert till["jwks"]["keys"][0]["x5c"]
    code, _, err = run(capsys, "clients", "add", "nodn", "--auth-method", "tls_client_auth",
                       "--instance", instance)
    assert code == 2 and "exactly one of --tls-subject-dn" in err


def test_serve_with_a_missing_certificate_says_so(capsys, instance, tmp_path):
    code, out, err = run(capsys, "serve", "--port", "1", "--instance", instance,
                         "--tls-cert", str(tmp_path / "missing.pem"),
                         "--tls-key", str(tmp_path / "missing-key.pem"))
    assert code == 2 and "cannot load the TLS certificate" in err and "CIBA provider at" not in out
    code, _, err = run(capsys, "serve", "--port", "1", "--instance", instance,
                       "--tls-client-ca", str(tmp_path / "missing-ca.pem"))
    assert code == 2 and "cannot read CA certificates" in err


def test_enroll_without_an_issuer_warns_that_the_code_points_to_localhost(capsys, instance,
                                                                          monkeypatch):
    monkeypatch.delenv("CIBA_ISSUER", raising=False)
    run_json(capsys, "users", "add", "alice", "--password", "pw-alice", "--instance", instance)
    code, out, err = run(capsys, "devices", "enroll", "alice", "--instance", instance)
    assert code == 0 and "base=http%3A%2F%2F127.0.0.1%3A5000" in out
    assert "warning: no issuer is set" in err
    code, out, err = run(capsys, "devices", "enroll", "alice", "--instance", instance,
                         "--issuer", "https://op.example")
    assert code == 0 and "base=https%3A%2F%2Fop.example" in out and "warning" not in err
