"""Mutual TLS for real (RFC 8705): ``ciba-provider serve --tls-cert/--tls-key/--tls-client-ca``
directly, and Debian's nginx terminating TLS in front of a plain-http provider that trusts the
forwarded certificate only from nginx (CIBA_TRUSTED_PROXIES, CIBA_TLS_CLIENT_CERT_PROXIES).
Both ways: tls_client_auth with ``ciba-client --cert`` as the README shows it, a
self_signed_tls_client_auth client registered while the server runs, a certificate-bound token
refused without its certificate, and clients without certificates on the same port."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests

from tests.support.provider_process import ProviderProcess, console_script, free_port
from tests.support.tls_provider import CERT_HEADER, NGINX, Nginx, TlsProviderProcess

pytestmark = pytest.mark.slow

APPROVAL = "mtls-approval-token-5be0"


def hook(base: str, verify, auth_req_id: str) -> None:
    response = requests.post(base + "/testing/ciba-approval", verify=verify, timeout=10,
                             headers={"Authorization": f"Bearer {APPROVAL}"},
                             data={"auth_req_id": auth_req_id, "action": "allow"})
    assert response.status_code == 200, response.text


def flow(base: str, verify, client_id: str, cert: tuple[str, str] | None) -> dict:
    """bc-authorize and token over mutual TLS with ``cert``; returns the token response."""
    http = requests.Session()
    http.cert = cert  # verify goes with each call: REQUESTS_CA_BUNDLE would override the session's
    started = http.post(base + "/bc-authorize", timeout=10, verify=verify, data={
        "client_id": client_id, "scope": "openid profile", "login_hint": "alice"})
    assert started.status_code == 200, started.text
    req = started.json()["auth_req_id"]
    hook(base, verify, req)
    tokens = http.post(base + "/token", timeout=10, verify=verify, data={
        "client_id": client_id, "grant_type": "urn:openid:params:grant-type:ciba",
        "auth_req_id": req})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def userinfo(base: str, verify, access_token: str, cert=None) -> requests.Response:
    return requests.get(base + "/userinfo", verify=verify, cert=cert, timeout=10,
                        headers={"Authorization": f"Bearer {access_token}"})


def check_both_methods(op: ProviderProcess, base: str, pki) -> None:
    verify = str(pki.ca)
    console = tuple(map(str, pki.client("console")))
    op.cli_json("users", "add", "alice", "--password", "alice-pw", "--name", "Alice")
    op.cli_json("clients", "add", "console", "--auth-method", "tls_client_auth",
                "--tls-subject-dn", "CN=console,O=Example")
    body = flow(base, verify, "console", console)
    assert userinfo(base, verify, body["access_token"], console).json()["name"] == "Alice"
    refused = userinfo(base, verify, body["access_token"])  # RFC 8705 §3: bound token
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    other = tuple(map(str, pki.client("someone")))
    assert userinfo(base, verify, body["access_token"], other).status_code == 401

    cert, key, jwks = pki.self_signed("till")
    jwks_file = pki.directory / "till-jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    op.cli_json("clients", "add", "till", "--auth-method", "self_signed_tls_client_auth",
                "--jwks", str(jwks_file))  # while the server runs
    body = flow(base, verify, "till", (str(cert), str(key)))
    assert userinfo(base, verify, body["access_token"], (str(cert), str(key))).status_code == 200

    # No certificate: a secret client on the same port; the certificate clients are refused.
    kiosk = op.cli_json("clients", "add", "kiosk")
    plain = requests.post(base + "/bc-authorize", verify=verify, timeout=10,
                          auth=("kiosk", kiosk["client_secret"]),
                          data={"scope": "openid", "login_hint": "alice"})
    assert plain.status_code == 200, plain.text
    anonymous = requests.post(base + "/bc-authorize", verify=verify, timeout=10, data={
        "client_id": "console", "scope": "openid", "login_hint": "alice"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"


def test_direct_tls(tmp_path, pki):
    with TlsProviderProcess(tmp_path, pki, env={"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL}) as op:
        meta = requests.get(op.url("/.well-known/openid-configuration"), verify=op.verify).json()
        assert meta["issuer"].startswith("https://")
        assert meta["tls_client_certificate_bound_access_tokens"] is True
        check_both_methods(op, op.base_url, pki)
        # A certificate the server cannot trust fails the handshake, and the server goes on.
        rogue = pki.directory.parent / "rogue"
        from server import certs

        issued = certs.client_certificate(rogue, "console")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(op.url("/jwks"), verify=op.verify, cert=(str(issued.cert),
                                                                  str(issued.key)), timeout=10)
        assert requests.get(op.url("/jwks"), verify=op.verify, timeout=10).status_code == 200


@pytest.mark.skipif(shutil.which("nginx") is None and not __import__("os").path.exists(NGINX),
                    reason="nginx is not installed (Debian package nginx; .ci/setup installs it)")
def test_behind_nginx(tmp_path, pki):
    upstream = free_port()
    nginx_port_holder = Nginx(tmp_path, pki, upstream, proxy_address="127.0.0.2")
    env = {"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL, "CIBA_TRUSTED_PROXIES": "1",
           "CIBA_TLS_CLIENT_CERT_HEADER": CERT_HEADER, "CIBA_TLS_CLIENT_CERT_PROXIES": "127.0.0.2",
           "CIBA_TLS_CLIENT_CA": str(pki.ca)}
    op = ProviderProcess(tmp_path, port=upstream, env=env, issuer=nginx_port_holder.url).start()
    nginx = nginx_port_holder.start()
    try:
        meta = requests.get(nginx.url + "/.well-known/openid-configuration",
                            verify=nginx.verify).json()
        assert meta["token_endpoint"] == nginx.url + "/token"
        check_both_methods(op, nginx.url, pki)
        # Straight to the provider (127.0.0.1, not nginx's 127.0.0.2): a forged header is ignored.
        forged = requests.post(op.url("/bc-authorize"), timeout=10,
                               headers={CERT_HEADER: pki.pem(pki.client("console")[0])
                                        .replace("\n", "%0A")},
                               data={"client_id": "console", "scope": "openid",
                                     "login_hint": "alice"})
        assert forged.status_code == 401 and forged.json()["error"] == "invalid_client"
    finally:
        nginx.stop()
        op.stop()


def test_ciba_client_with_a_certificate(tmp_path, pki):
    """The README's console client over mutual TLS: ciba-client --cert --key --ca."""
    with TlsProviderProcess(tmp_path, pki) as op:
        op.cli_json("users", "add", "alice", "--password", "alice-pw")
        op.cli_json("clients", "add", "console", "--auth-method", "tls_client_auth",
                    "--tls-subject-dn", "CN=console,O=Example", "--polling-interval", "1")
        cert, key = pki.client("console")
        client = subprocess.Popen(
            console_script("ciba-client", "server.demo.console_client") + [
                "--issuer", op.issuer, "--client-id", "console", "--cert", str(cert),
                "--key", str(key), "--ca", str(pki.ca), "--login-hint", "alice",
                "--binding-message", "DESK-1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        link = op.approval_link("alice", timeout=30)
        browser = requests.Session()
        page = browser.get(link, timeout=10, verify=op.verify)
        page = browser.post(link, timeout=10, verify=op.verify, data={
            "action": "sign_in", "username": "alice", "password": "alice-pw",
            "csrf_token": _csrf(page.text)})
        assert "DESK-1" in page.text
        done = browser.post(link, timeout=10, verify=op.verify, data={
            "action": "accept", "csrf_token": _csrf(page.text)})
        assert "Request approved" in done.text
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, out + err
        assert "access_token:" in out and '"sub"' in out
        assert "bound to this client certificate" in out




def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
