"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592) with the CIBA
metadata of CIBA §4: initial access tokens, invalid_client_metadata, invalid_token, the SSRF
rule for self-registered notification endpoints (at registration and at delivery), and a
self-registered client completing a CIBA flow."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from server import cli
from server.oauth import netguard
from server.oauth.registration import issue_initial_token
from server.storage import audit as audit_repo
from server.storage.models import NotificationOutbox

from .ciba_helpers import CIBA, assert_error, auth_req_id, decide_request, poll, public_jwks, \
    rsa_client_key
from .test_delivery_modes import notification_endpoint  # noqa: F401  (fixture)

POLL = {"client_name": "Self-registered kiosk", "backchannel_token_delivery_mode": "poll",
        "grant_types": [CIBA], "scope": "openid profile"}


@pytest.fixture
def initial_token(provider):
    def make(lifetime: int = 3600, single_use: bool = False) -> str:
        return issue_initial_token(provider, "tests", lifetime, single_use, "operator:olga")[0]

    return make


def register(http, token: str | None, body, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        return http.post("/register", json=body, headers=headers)
    return http.post("/register", data=body, headers=headers)


class Creds:
    """A registered client as ciba_helpers expects it (basic authentication)."""

    def __init__(self, answer: dict) -> None:
        self.client_id, self.secret = answer["client_id"], answer.get("client_secret")

    def basic(self) -> dict:
        import base64
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_discovery_names_the_registration_endpoint(http):
    assert http.get("/.well-known/openid-configuration").json["registration_endpoint"] == \
        "http://op.test/register"


def test_a_registered_client_completes_a_ciba_flow(http, provider, alice, initial_token):
    r = register(http, initial_token(), POLL)
    assert r.status_code == 201, r.json
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json
    assert body["client_name"] == "Self-registered kiosk"
    assert body["backchannel_token_delivery_mode"] == "poll"
    assert body["token_endpoint_auth_method"] == "client_secret_basic"  # RFC 7591 §2 default
    assert body["grant_types"] == [CIBA]
    assert len(body["client_secret"]) >= 43 and body["client_secret_expires_at"] == 0
    assert len(body["registration_access_token"]) >= 43
    assert body["registration_client_uri"] == f"http://op.test/register/{body['client_id']}"
    assert isinstance(body["client_id_issued_at"], int)
    creds = Creds(body)
    req = auth_req_id(http, creds, scope="openid profile", binding_message="SELF-1")
    decide_request(provider, req)
    tokens = poll(http, creds, req)
    assert tokens.status_code == 200, tokens.json
    assert "id_token" in tokens.json


def test_a_registered_client_may_require_signed_requests(http, provider, clock, alice,
                                                        initial_token):
    """CIBA §4 backchannel_authentication_request_signing_alg: from then on only a request
    object signed with the registered alg and keys is accepted (CIBA §7.1.1)."""
    from .test_request_objects import request_object

    key = rsa_client_key("self-key")
    r = register(http, initial_token(), {
        **POLL, "jwks": public_jwks(key),
        "backchannel_authentication_request_signing_alg": "PS256"})
    assert r.status_code == 201, r.json
    assert r.json["backchannel_authentication_request_signing_alg"] == "PS256"
    creds = Creds(r.json)
    unsigned = http.post("/bc-authorize", headers=creds.basic(),
                         data={"scope": "openid", "login_hint": "alice"})
    assert_error(unsigned, 400, "invalid_request")
    signed = request_object(clock, key, client_id=creds.client_id, alg="PS256")
    ok = http.post("/bc-authorize", headers=creds.basic(), data={"request": signed})
    assert ok.status_code == 200, ok.json


def test_private_key_jwt_clients_register_their_keys(http, initial_token):
    key = rsa_client_key()
    r = register(http, initial_token(), {**POLL, "token_endpoint_auth_method": "private_key_jwt",
                                         "jwks": public_jwks(key)})
    assert r.status_code == 201, r.json
    assert "client_secret" not in r.json and r.json["jwks"]["keys"][0]["kid"] == key.kid


@pytest.mark.parametrize("token, challenge", [
    (None, "Bearer"),
    ("not-a-token", 'Bearer error="invalid_token"'),
])
def test_registration_needs_a_valid_initial_access_token(http, token, challenge):
    r = register(http, token, POLL)
    assert_error(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == challenge


def test_an_expired_or_revoked_initial_token_is_refused(http, provider, initial_token, clock):
    from server.oauth.registration import list_initial_tokens, revoke_initial_token

    expiring = initial_token(lifetime=60)
    clock.advance(61)
    assert_error(register(http, expiring, POLL), 401, "invalid_token")
    revoked = initial_token()
    revoke_initial_token(provider, list_initial_tokens(provider)[0].id, "operator:olga")
    assert_error(register(http, revoked, POLL), 401, "invalid_token")


def test_a_single_use_token_registers_once(http, initial_token):
    token = initial_token(single_use=True)
    # a refused registration does not use it up
    assert_error(register(http, token, {**POLL, "scope": "profile"}), 400,
                 "invalid_client_metadata")
    assert register(http, token, POLL).status_code == 201
    assert_error(register(http, token, POLL), 401, "invalid_token")


def test_a_reusable_token_registers_several_clients(http, initial_token):
    token = initial_token()
    first, second = register(http, token, POLL).json, register(http, token, POLL).json
    assert first["client_id"] != second["client_id"]


@pytest.mark.parametrize("change, words", [
    ({"backchannel_token_delivery_mode": None}, "backchannel_token_delivery_mode is required"),
    ({"backchannel_token_delivery_mode": "carrier-pigeon"}, "delivery mode"),
    ({"backchannel_token_delivery_mode": "ping"}, "notification_endpoint is required"),
    ({"backchannel_token_delivery_mode": "push"}, "notification_endpoint is required"),
    ({"backchannel_authentication_request_signing_alg": "PS256"}, "public keys (jwks or jwks_uri)"),
    ({"backchannel_authentication_request_signing_alg": "HS256",
      "jwks": {"keys": [{"kty": "RSA"}]}}, "RS256, PS256, ES256"),
    ({"token_endpoint_auth_method": "tls_client_auth"}, "exactly one of tls_client_auth_subject_dn"),
    ({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=a",
      "tls_client_auth_san_dns": "a.example"}, "exactly one"),
    ({"tls_client_auth_subject_dn": "CN=a"}, "are for tls_client_auth"),
    ({"tls_client_certificate_bound_access_tokens": "yes"}, "boolean"),
    ({"grant_types": [CIBA, "client_credentials"]}, "grant_types"),
    ({"backchannel_user_code_parameter": "yes"}, "boolean"),
    ({"redirect_uris": ["https://rp.example/cb"]}, "redirect"),
    ({"response_types": ["code"]}, "redirect"),
    ({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method"),
    ({"grant_types": ["authorization_code"]}, "grant_types"),
    ({"grant_types": "urn:openid:params:grant-type:ciba"}, "grant_types"),
    ({"scope": "profile"}, "openid"),
    ({"scope": "openid payroll"}, "unknown scopes"),
    ({"id_token_signed_response_alg": "none"}, "id_token_signed_response_alg"),
    ({"client_name": ["x"]}, "client_name"),
    ({"logo_uri": "http://rp.example/logo.png"}, "logo_uri"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "jwks"),
    ({"token_endpoint_auth_method": "private_key_jwt",
      "jwks": {"keys": [rsa_client_key().as_dict(private=True)]}}, "private key"),
    ({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "RSA"}]},
      "jwks_uri": "https://93.184.216.34/jwks"}, "not both"),
])
def test_bad_metadata_is_invalid_client_metadata(http, initial_token, change, words):
    body = {k: v for k, v in {**POLL, **change}.items() if v is not None}
    answer = assert_error(register(http, initial_token(), body), 400, "invalid_client_metadata")
    assert words in answer["error_description"], answer


@pytest.mark.parametrize("body, content_type", [("not json", "text/plain"),
                                                ("[1, 2]", "application/json"),
                                                ("{broken", "application/json")])
def test_a_body_that_is_no_json_object_is_invalid_client_metadata(http, initial_token, body,
                                                                  content_type):
    r = register(http, initial_token(), body, **{"Content-Type": content_type})
    assert_error(r, 400, "invalid_client_metadata")


def test_software_statements_are_not_approved(http, initial_token):
    r = register(http, initial_token(), {**POLL, "software_statement": "eyJ.x.y"})
    assert_error(r, 400, "unapproved_software_statement")


def test_unknown_metadata_is_ignored(http, initial_token):
    r = register(http, initial_token(), {**POLL, "tos_uri": "https://rp.example/tos",
                                         "x-colour": "blue"})
    assert r.status_code == 201 and "x-colour" not in r.json


@pytest.mark.parametrize("endpoint, words", [
    ("http://93.184.216.34/cb", "https"),
    ("https://127.0.0.1/cb", "not public"),
    ("https://localhost:8443/cb", "not public"),
    ("https://10.1.2.3/cb", "not public"),
    ("https://192.168.0.10/cb", "not public"),
    ("https://172.16.5.4/cb", "not public"),
    ("https://169.254.169.254/latest/meta-data", "not public"),
    ("https://[::1]/cb", "not public"),
    ("https://[fe80::1]/cb", "not public"),
    ("https://[::ffff:127.0.0.1]/cb", "not public"),
    ("https://100.64.0.1/cb", "not public"),
    ("https://0.0.0.0/cb", "not public"),
    ("https://user:pw@93.184.216.34/cb", "user name"),
    ("https://no-such-host.invalid/cb", "does not resolve"),
])
def test_a_self_registered_notification_endpoint_must_be_public_https(http, initial_token,
                                                                     endpoint, words):
    body = {**POLL, "backchannel_token_delivery_mode": "ping",
            "backchannel_client_notification_endpoint": endpoint}
    answer = assert_error(register(http, initial_token(), body), 400, "invalid_client_metadata")
    assert words in answer["error_description"], answer


def test_a_name_that_resolves_to_a_private_address_is_refused(http, initial_token, monkeypatch):
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.8"])
    body = {**POLL, "backchannel_token_delivery_mode": "ping",
            "backchannel_client_notification_endpoint": "https://cb.rp.example/ping"}
    answer = assert_error(register(http, initial_token(), body), 400, "invalid_client_metadata")
    assert "10.0.0.8" in answer["error_description"]


def test_the_endpoint_is_checked_again_at_delivery(http, provider, alice, initial_token,
                                                   monkeypatch, caplog):
    """DNS rebinding: public at registration, loopback when the ping is due: nothing is sent."""
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.216.34"])
    body = {**POLL, "backchannel_token_delivery_mode": "ping",
            "backchannel_client_notification_endpoint": "https://cb.rebind.example/ping"}
    r = register(http, initial_token(), body)
    assert r.status_code == 201, r.json
    creds = Creds(r.json)
    sent = []
    monkeypatch.setattr(provider.outbox.http, "post", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(provider.outbox.guarded_http, "post", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["127.0.0.1"])
    req = auth_req_id(http, creds, scope="openid", client_notification_token="ping-token-1")
    with caplog.at_level(logging.WARNING, logger="server.oauth.delivery"):
        decide_request(provider, req)  # wakes the outbox loop, which makes the first attempt
        row = _first_attempt(provider)
    assert sent == []
    assert any("not notifying client" in m and "not public" in m for m in caplog.messages)
    # kept for a retry (backoff), in case the name resolves to a public address again
    assert row.status == "pending" and "not public" in row.last_error


def test_a_name_that_rebinds_after_the_check_is_not_connected_to(http, provider, alice,
                                                                  initial_token, monkeypatch):
    """DNS rebinding between the check before the attempt and the connection itself: the
    check sees a public address, the connection would reach loopback. Not a byte is sent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.216.34"])
    body = {**POLL, "backchannel_token_delivery_mode": "ping",
            "backchannel_client_notification_endpoint": f"https://localhost:{port}/ping"}
    r = register(http, initial_token(), body)
    assert r.status_code == 201, r.json
    creds = Creds(r.json)
    answers = iter([["93.184.216.34"]])  # the check before the attempt; then loopback
    monkeypatch.setattr(netguard, "resolve",
                        lambda host, port: next(answers, ["127.0.0.1"]))
    req = auth_req_id(http, creds, scope="openid", client_notification_token="ping-token-2")
    decide_request(provider, req)
    row = _first_attempt(provider)
    try:
        connection, _ = listener.accept()
    except (socket.timeout, TimeoutError):
        connection = None
    listener.close()
    assert connection is None, "the provider connected to a loopback address"
    assert row.status == "pending" and "unreachable" in row.last_error


def _first_attempt(provider, timeout: float = 20.0) -> NotificationOutbox:
    """The outbox row once its first attempt is recorded (the loop runs on its own thread)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        with provider.db.session() as s:
            row = s.query(NotificationOutbox).one_or_none()
            if row is not None and row.attempts >= 1:
                return row
        assert time.monotonic() < deadline, "the outbox made no attempt"
        time.sleep(0.05)


def test_operator_clients_may_use_private_endpoints(http, provider, alice, make_client,
                                                    notification_endpoint):  # noqa: F811
    """The SSRF rule is for self-registered clients: an operator's ping client on 127.0.0.1
    is notified (the CLI and the console show a warning instead)."""
    from server.admin_clients import endpoint_warnings, get_spec

    creds = make_client("teller", delivery_mode="ping",
                        notification_endpoint=notification_endpoint.url)
    assert "must be an https URL" in endpoint_warnings(get_spec(provider, "teller"))[0]
    req = auth_req_id(http, creds, client_notification_token="ping-token-2")
    decide_request(provider, req)
    _, _, body = notification_endpoint.received.get(timeout=10)
    assert body == {"auth_req_id": req}


# -- RFC 7592 -----------------------------------------------------------------------------------
@pytest.fixture
def registered(http, initial_token) -> dict:
    r = register(http, initial_token(), POLL)
    assert r.status_code == 201
    return r.json


def manage(http, method: str, answer: dict, token: str | None = None, body=None):
    token = answer["registration_access_token"] if token is None else token
    path = answer["registration_client_uri"].removeprefix("http://op.test")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.open(path, method=method, json=body, headers=headers)


def test_read_returns_the_registration(http, registered):
    r = manage(http, "GET", registered)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert r.json["client_id"] == registered["client_id"]
    assert r.json["client_name"] == "Self-registered kiosk"
    assert r.json["registration_access_token"] == registered["registration_access_token"]
    assert "client_secret" not in r.json  # only its hash is kept


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_bad_registration_access_token_is_invalid_token(http, registered, initial_token,
                                                          method):
    other = register(http, initial_token(), POLL).json
    for token in ("wrong", other["registration_access_token"]):
        r = manage(http, method, registered, token, body={"client_id": registered["client_id"]})
        assert_error(r, 401, "invalid_token")
        assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    r = manage(http, method, registered, "", body={})
    assert_error(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_operator_clients_cannot_be_managed(http, kiosk):
    r = http.get("/register/kiosk", headers={"Authorization": "Bearer anything"})
    assert_error(r, 401, "invalid_token")


def test_update_replaces_the_registration_and_rotates_the_token(http, registered):
    body = {**{k: v for k, v in registered.items() if k != "client_secret"},
            "client_name": "Renamed kiosk", "scope": "openid email"}
    r = manage(http, "PUT", registered, body=body)  # echoed server fields are ignored
    assert r.status_code == 200, r.json
    assert r.json["client_name"] == "Renamed kiosk" and r.json["scope"] == "openid email"
    new_token = r.json["registration_access_token"]
    assert new_token != registered["registration_access_token"]
    assert_error(manage(http, "GET", registered), 401, "invalid_token")  # the old one is dead
    assert manage(http, "GET", registered, new_token).json["client_name"] == "Renamed kiosk"
    # the secret still works
    creds = Creds(registered)
    assert http.post("/bc-authorize", data={"scope": "openid", "login_hint": "nobody"},
                     headers=creds.basic()).json["error"] == "unknown_user_id"


@pytest.mark.parametrize("change, error", [
    ({"client_id": "someone-else"}, "client_id"),
    ({"client_id": None}, "client_id"),
    ({"client_secret": "my-own-choice"}, "client_secret"),
    ({"backchannel_token_delivery_mode": "push"}, "notification_endpoint"),
])
def test_bad_updates_are_invalid_client_metadata(http, registered, change, error):
    body = {k: v for k, v in {**POLL, "client_id": registered["client_id"], **change}.items()
            if v is not None}
    answer = assert_error(manage(http, "PUT", registered, body=body), 400,
                          "invalid_client_metadata")
    assert error in answer["error_description"]


def test_update_may_send_the_current_secret(http, registered):
    body = {**POLL, "client_id": registered["client_id"],
            "client_secret": registered["client_secret"]}
    assert manage(http, "PUT", registered, body=body).status_code == 200


def test_delete_removes_the_client(http, registered):
    r = manage(http, "DELETE", registered)
    assert r.status_code == 204 and r.data == b""
    assert_error(manage(http, "GET", registered), 401, "invalid_token")
    r = http.post("/bc-authorize", data={"scope": "openid", "login_hint": "alice"},
                  headers=Creds(registered).basic())
    assert_error(r, 401, "invalid_client")


def test_registration_is_audited_without_tokens_or_secrets(http, provider, registered):
    manage(http, "DELETE", registered)
    with provider.db.session() as s:
        rows = audit_repo.newest(s, audit_repo.AuditFilter(client_id=registered["client_id"]))
        events = [(r.event, r.actor) for r in rows]
        text = json.dumps([r.detail for r in rows])
    assert ("client_created", events[-1][1]) == events[-1] and events[-1][1].startswith(
        "registration:")
    assert ("client_removed", f"client:{registered['client_id']}") in events
    for secret in (registered["client_secret"], registered["registration_access_token"]):
        assert secret not in text


def test_cli_prints_the_token_alone_on_the_last_line(settings, provider, http, capsys):
    assert cli.main(["clients", "registration-token", "--single-use", "--expires-in", "600",
                     "--label", "partner", "--instance", settings.instance_path,
                     "--issuer", settings.issuer]) == 0
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    assert "single use" in out and " " not in token and len(token) >= 43
    assert register(http, token, POLL).status_code == 201
    assert_error(register(http, token, POLL), 401, "invalid_token")
