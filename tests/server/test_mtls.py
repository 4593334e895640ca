"""Mutual-TLS client authentication and certificate-bound access tokens (RFC 8705), through the
Flask test client with the certificate where werkzeug's TLS server puts it (SSL_CLIENT_CERT).
Real TLS, directly and behind nginx: test_mtls_tls.py."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from server import create_app
from server.admin import AdminError
from server.demo.resource_api import JwksVerifier, create_resource_api

from .ciba_helpers import CIBA, assert_error, decide_request, verify_jwt


@pytest.fixture
def settings(settings, pki):
    settings.tls_client_ca = str(pki.ca)
    return settings


def tls(pki, cert_path) -> dict:
    """The environ werkzeug's TLS server gives a request that came with this certificate."""
    return {"SSL_CLIENT_CERT": pki.pem(cert_path)} if cert_path else {}


def x5t(pki, cert_path) -> str:
    der = pki.load(cert_path).public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


@pytest.fixture
def console(make_client, pki):
    make_client("console", auth_method="tls_client_auth", tls_subject_dn="CN=console,O=Example",
                scope="openid profile offline_access")
    return pki.client("console")


def start(http, client_id, environ, **form):
    return http.post("/bc-authorize", environ_base=environ,
                     data={"client_id": client_id, "scope": "openid", "login_hint": "alice",
                           **form})


def token(http, client_id, environ, **form):
    return http.post("/token", environ_base=environ, data={"client_id": client_id, **form})


def approved_tokens(http, provider, client_id, environ, scope="openid profile") -> dict:
    response = start(http, client_id, environ, scope=scope)
    assert response.status_code == 200, response.json
    req = response.json["auth_req_id"]
    decide_request(provider, req)
    response = token(http, client_id, environ, grant_type=CIBA, auth_req_id=req)
    assert response.status_code == 200, response.json
    return response.json


# -- tls_client_auth (RFC 8705 §2.1) ---------------------------------------------------------
def test_tls_client_auth_flow_gives_a_bound_token(http, provider, alice, console, pki):
    cert, _ = console
    body = approved_tokens(http, provider, "console", tls(pki, cert))
    claims = verify_jwt(body["access_token"], http.get("/jwks").json, ["ES256"]).claims
    assert claims["cnf"] == {"x5t#S256": x5t(pki, cert)}  # RFC 8705 §3.1
    assert claims["client_id"] == "console"


@pytest.mark.parametrize("which", ["no certificate", "other subject", "same DN, other CA",
                                   "same DN, self-signed"])
def test_tls_client_auth_refuses_a_wrong_certificate(http, alice, console, pki, tmp_path, which):
    from server import certs

    if which == "no certificate":
        environ = {}
    elif which == "other subject":
        environ = tls(pki, pki.client("intruder")[0])
    elif which == "same DN, other CA":
        environ = tls(pki, certs.client_certificate(tmp_path / "rogue-ca", "console").cert)
    else:
        environ = tls(pki, certs.self_signed_client(tmp_path, "console")[0].cert)
    assert_error(start(http, "console", environ), 401, "invalid_client")
    assert_error(token(http, "console", environ, grant_type=CIBA, auth_req_id="x"), 401,
                 "invalid_client")


@pytest.mark.parametrize("field, value", [("tls_san_dns", "console.example"),
                                          ("tls_san_uri", "https://console.example/id"),
                                          ("tls_san_ip", "192.0.2.10"),
                                          ("tls_san_email", "console@example.com")])
def test_tls_client_auth_by_subject_alternative_name(http, alice, make_client, pki, tmp_path,
                                                     field, value):
    import ipaddress

    from cryptography import x509

    from server import certs

    san = {"tls_san_dns": x509.DNSName, "tls_san_uri": x509.UniformResourceIdentifier,
           "tls_san_email": x509.RFC822Name}.get(field)
    general = x509.IPAddress(ipaddress.ip_address(value)) if san is None else san(value)
    ca, ca_key = certs.ensure_ca(pki.directory)
    issued = certs._leaf(tmp_path, "by-san", certs._name("anything", "Example"), ca, ca_key,
                         server=False, sans=[general])
    make_client("sanclient", auth_method="tls_client_auth", **{field: value})
    assert start(http, "sanclient", tls(pki, issued.cert)).status_code == 200
    make_client("othersan", auth_method="tls_client_auth",
                **{field: value.replace("192.0.2.10", "192.0.2.11").replace("console", "x")})
    assert_error(start(http, "othersan", tls(pki, issued.cert)), 401, "invalid_client")


def test_tls_client_auth_at_introspection_and_revocation(http, provider, alice, console, pki):
    cert, _ = console
    environ = tls(pki, cert)
    body = approved_tokens(http, provider, "console", environ, scope="openid offline_access")
    seen = http.post("/introspect", environ_base=environ,
                     data={"client_id": "console", "token": body["access_token"]}).json
    # RFC 8705 §3.2: introspection tells the resource server which certificate to expect.
    assert seen["active"] is True and seen["cnf"] == {"x5t#S256": x5t(pki, cert)}
    assert_error(http.post("/introspect", data={"client_id": "console", "token": "x"}), 401,
                 "invalid_client")
    revoked = http.post("/revoke", environ_base=environ,
                        data={"client_id": "console", "token": body["refresh_token"]})
    assert revoked.status_code == 200
    assert http.post("/introspect", environ_base=environ, data={
        "client_id": "console", "token": body["access_token"]}).json == {"active": False}


# -- self_signed_tls_client_auth (RFC 8705 §2.2) ---------------------------------------------
def test_self_signed_client_authenticates_with_the_certificate_in_its_jwks(http, provider, alice,
                                                                        make_client, pki):
    cert, _, jwks = pki.self_signed("till")
    make_client("till", auth_method="self_signed_tls_client_auth", jwks=jwks)
    body = approved_tokens(http, provider, "till", tls(pki, cert))
    claims = verify_jwt(body["access_token"], http.get("/jwks").json, ["ES256"]).claims
    assert claims["cnf"]["x5t#S256"] == x5t(pki, cert)
    other, _, _ = pki.self_signed("other-till")
    assert_error(start(http, "till", tls(pki, other)), 401, "invalid_client")
    assert_error(start(http, "till", tls(pki, pki.client("till")[0])), 401, "invalid_client")


def test_self_signed_client_needs_x5c_in_its_jwks(make_client, pki):
    _, _, jwks = pki.self_signed("nox5c")
    del jwks["keys"][0]["x5c"]
    with pytest.raises(AdminError, match="x5c"):
        make_client("nox5c", auth_method="self_signed_tls_client_auth", jwks=jwks)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one"),
    ({"tls_subject_dn": "CN=a", "tls_san_dns": "a.example"}, "exactly one"),
    ({"tls_subject_dn": "not a DN"}, "malformed"),
    ({"tls_san_ip": "999.1.1.1"}, "malformed"),
    ({"tls_subject_dn": "CN=a", "delivery_mode": "push",
      "notification_endpoint": "https://a.example/cb"}, "certificate-bound"),
])
def test_tls_client_auth_registration_errors(make_client, kwargs, message):
    with pytest.raises(AdminError, match=message):
        make_client("bad", auth_method="tls_client_auth", **kwargs)


# -- bound tokens at the protected resources (RFC 8705 §3) ------------------------------------
def test_userinfo_refuses_a_bound_token_without_its_certificate(http, provider, alice, console,
                                                                pki):
    cert, _ = console
    access = approved_tokens(http, provider, "console", tls(pki, cert))["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    ok = http.get("/userinfo", headers=bearer, environ_base=tls(pki, cert))
    assert ok.status_code == 200 and ok.json["sub"] == alice.id
    for environ in ({}, tls(pki, pki.client("someone-else")[0])):
        refused = http.get("/userinfo", headers=bearer, environ_base=environ)
        assert refused.status_code == 401
        assert refused.json["error"] == "invalid_token"
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_resource_api_refuses_a_bound_token_without_its_certificate(http, provider, alice,
                                                                   console, pki):
    cert, _ = console
    access = approved_tokens(http, provider, "console", tls(pki, cert))["access_token"]

    class LocalVerifier(JwksVerifier):
        def keys(self, refresh=False):
            from joserfc.jwk import KeySet

            return KeySet.import_key_set(http.get("/jwks").json)

    api = create_resource_api(provider.issuer, verifier=LocalVerifier(
        provider.issuer, now=provider.clock.now)).test_client()
    bearer = {"Authorization": f"Bearer {access}"}
    assert api.get("/loans", headers=bearer, environ_base=tls(pki, cert)).status_code == 200
    refused = api.get("/loans", headers=bearer)
    assert refused.status_code == 401 and refused.json["error"] == "invalid_token"


def test_refresh_binds_the_new_token_to_the_certificate_of_the_refresh(http, provider, alice,
                                                                      console, pki):
    cert, _ = console
    environ = tls(pki, cert)
    body = approved_tokens(http, provider, "console", environ, scope="openid offline_access")
    no_cert = token(http, "console", {}, grant_type="refresh_token",
                    refresh_token=body["refresh_token"])
    assert_error(no_cert, 401, "invalid_client")
    refreshed = token(http, "console", environ, grant_type="refresh_token",
                      refresh_token=body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.json
    claims = verify_jwt(refreshed.json["access_token"], http.get("/jwks").json, ["ES256"]).claims
    assert claims["cnf"]["x5t#S256"] == x5t(pki, cert)


def test_a_client_registered_for_bound_tokens_needs_a_certificate(http, provider, alice,
                                                                 make_client):
    creds = make_client("boundkiosk", bound_tokens=True)
    response = http.post("/bc-authorize", headers=creds.basic(),
                         data={"scope": "openid", "login_hint": "alice"})
    req = response.json["auth_req_id"]
    decide_request(provider, req)
    refused = http.post("/token", headers=creds.basic(),
                        data={"grant_type": CIBA, "auth_req_id": req})
    assert_error(refused, 400, "invalid_request")


def test_discovery_advertises_mtls(http, settings, clock):
    meta = http.get("/.well-known/openid-configuration").json
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(
        meta["token_endpoint_auth_methods_supported"])
    assert "mtls_endpoint_aliases" not in meta  # same endpoints as the issuer's
    settings.mtls_base_url = "https://mtls.op.test"
    aliased = create_app(settings, clock=clock).test_client()
    aliases = aliased.get("/.well-known/openid-configuration").json["mtls_endpoint_aliases"]
    assert aliases["token_endpoint"] == "https://mtls.op.test/token"
    assert aliases["backchannel_authentication_endpoint"] == "https://mtls.op.test/bc-authorize"


def test_a_certificate_header_is_ignored_unless_from_a_trusted_proxy(http, provider, alice,
                                                                    console, pki, settings,
                                                                    clock):
    cert, _ = console
    header = {"X-Client-Cert": pki.pem(cert).replace("\n", "%0A")}
    settings.tls_client_cert_header = "X-Client-Cert"
    direct = create_app(settings, clock=clock).test_client()  # CIBA_TRUSTED_PROXIES=0
    assert_error(direct.post("/bc-authorize", headers=header, data={
        "client_id": "console", "scope": "openid", "login_hint": "alice"}), 401, "invalid_client")
    settings.trusted_proxies = 1
    proxied = create_app(settings, clock=clock).test_client()
    ok = proxied.post("/bc-authorize", headers=header, environ_base={"REMOTE_ADDR": "127.0.0.1"},
                      data={"client_id": "console", "scope": "openid", "login_hint": "alice"})
    assert ok.status_code == 200, ok.json
    elsewhere = proxied.post("/bc-authorize", headers=header,
                             environ_base={"REMOTE_ADDR": "198.51.100.7"},
                             data={"client_id": "console", "scope": "openid",
                                   "login_hint": "alice"})
    assert_error(elsewhere, 401, "invalid_client")


def test_a_client_assertion_may_name_the_mtls_alias(settings, clock, tmp_path):
    from server.admin import ClientSpec, add_client, add_user

    from .ciba_helpers import assertion_form, client_assertion, public_jwks, rsa_client_key

    settings.mtls_base_url = "https://mtls.op.test"
    app = create_app(settings, clock=clock)
    provider = app.extensions["ciba"]
    add_user(provider, "alice", "pw")
    key = rsa_client_key()
    add_client(provider, ClientSpec("bank", auth_method="private_key_jwt", jwks=public_jwks(key)))
    form = assertion_form(client_assertion("bank", key, "https://mtls.op.test/bc-authorize",
                                           now=clock.now()))
    response = app.test_client().post("/bc-authorize", data={
        **form, "scope": "openid", "login_hint": "alice"})
    assert response.status_code == 200, response.json


# -- dynamic client registration (RFC 7591 with RFC 8705 §2.1.2 metadata) ---------------------
def test_a_client_registers_itself_for_tls_client_auth(http, provider, alice, pki):
    """RFC 8705 metadata through /register: the registered certificate subject is what the
    client then authenticates with, and its tokens are bound to that certificate."""
    from server.registration import issue_initial_token

    token = issue_initial_token(provider, "tests", 3600, True, "operator:olga")[0]
    r = http.post("/register", headers={"Authorization": f"Bearer {token}"}, json={
        "token_endpoint_auth_method": "tls_client_auth", "backchannel_token_delivery_mode": "poll",
        "tls_client_auth_subject_dn": "CN=self-desk,O=Example", "scope": "openid profile",
        "grant_types": [CIBA]})
    assert r.status_code == 201, r.json
    assert "client_secret" not in r.json and "client_secret_expires_at" not in r.json
    assert r.json["tls_client_certificate_bound_access_tokens"] is True  # the mTLS default
    client_id = r.json["client_id"]
    cert, _ = pki.client("self-desk")
    body = approved_tokens(http, provider, client_id, tls(pki, cert))
    claims = verify_jwt(body["access_token"], http.get("/jwks").json, ["ES256"]).claims
    assert claims["cnf"] == {"x5t#S256": x5t(pki, cert)}
    assert_error(start(http, client_id, tls(pki, pki.client("other-desk")[0])), 401,
                 "invalid_client")
