"""CIBA policy hooks (server/oauth/policy.py): a deployment's policy changes what the
backchannel endpoint accepts, whom a hint names, how the person is reached and what they read;
in-process for each hook, and end to end through CIBA_POLICY on a real server."""

from __future__ import annotations

import re
import time

import pytest
import requests
from joserfc import jwt

from server.admin import add_user
from server.config import Settings
from server.oauth import policy as policy_module
from server.oauth.policy import CibaPolicy, FunctionHooks
from server.wiring import create_app
from tests.support.provider_process import ROOT, ProviderProcess

from .ciba_helpers import (assert_error, assertion_form, auth_req_id, bc_authorize,
                           client_assertion, decide_request, poll, public_jwks, rsa_client_key)
from .desk_policy import DeskPolicy

ISSUER = "http://op.test"
CIBA = "urn:openid:params:grant-type:ciba"


@pytest.fixture
def app(settings, clock):
    app = create_app(settings, clock=clock, policy=DeskPolicy())
    app.config["TESTING"] = True
    return app


@pytest.fixture
def staff(provider):
    alice = add_user(provider, "alice", "alice-password", name="Alice", email="alice@library.example")
    add_user(provider, "bob", "bob-password", name="Bob", email="bob@example.com")
    return alice


def test_the_policy_given_to_the_factory_is_the_providers(provider):
    assert isinstance(provider.policy, DeskPolicy)


def test_login_hint_hook_finds_staff_numbers_only(http, staff, kiosk):
    assert bc_authorize(http, kiosk, login_hint="e-1001", binding_message="DESK-1").status_code == 200
    assert_error(bc_authorize(http, kiosk, login_hint="alice", binding_message="DESK-1"),
                 400, "unknown_user_id")


def test_binding_message_hook(http, staff, kiosk):
    body = assert_error(bc_authorize(http, kiosk, login_hint="E-1001", binding_message="hello"),
                        400, "invalid_binding_message")
    assert body["error_description"] == "binding_message must look like DESK-12"


def test_request_context_hook_can_refuse_the_person_or_the_request(http, staff, kiosk):
    body = assert_error(bc_authorize(http, kiosk, login_hint="E-1002"), 403, "access_denied")
    assert "library staff" in body["error_description"]
    assert_error(bc_authorize(http, kiosk, login_hint="E-1001", acr_values="urn:example:vault"),
                 400, "invalid_request")


def test_authorization_details_hook(http, staff, kiosk):
    ok = '[{"type": "loan_renewal", "items": ["b-17"]}]'
    assert bc_authorize(http, kiosk, login_hint="E-1001", authorization_details=ok).status_code == 200
    body = assert_error(bc_authorize(http, kiosk, login_hint="E-1001",
                                     authorization_details='[{"type": "payment"}]'),
                        400, "invalid_request")
    assert "payment" in body["error_description"]


def test_user_code_hook(http, staff, make_client):
    strict = make_client("strict", user_code_required=True)
    assert_error(bc_authorize(http, strict, login_hint="E-1001", user_code="123456"),
                 400, "invalid_user_code")
    assert bc_authorize(http, strict, login_hint="E-1001", user_code="PIN-alice").status_code == 200


def test_login_hint_token_hook(http, staff, make_client):
    key = rsa_client_key()
    client = make_client("pkj", auth_method="private_key_jwt", jwks=public_jwks(key))
    token = jwt.encode({"alg": "RS256", "kid": key.kid},
                       {"staff_number": "E-1001", "exp": int(time.time()) + 60}, key)
    response = http.post("/bc-authorize", data={
        "scope": "openid", "login_hint_token": token,
        **assertion_form(client_assertion(client.client_id, key, ISSUER))})
    assert response.status_code == 200, response.json


def test_id_token_hint_hook(http, staff, kiosk, provider, clock):
    first = auth_req_id(http, kiosk, login_hint="E-1001")
    decide_request(provider, first)
    id_token = poll(http, kiosk, first).json["id_token"]
    assert bc_authorize(http, kiosk, login_hint=None, id_token_hint=id_token).status_code == 200
    clock.advance(2 * 3600)
    assert_error(bc_authorize(http, kiosk, login_hint=None, id_token_hint=id_token),
                 400, "unknown_user_id")


def test_channel_and_consent_text_hooks(http, staff, kiosk, provider):
    response = bc_authorize(http, kiosk, login_hint="E-1001")
    assert response.json["ciba_stack_delivery"] == "console"
    assert provider.channel_mode_for(staff) == "console"
    assert provider.describe_scope("openid") == "Prove it is you at the library desk"
    assert provider.describe_scope("email") == "Your email address"  # the default's words


def test_settings_load_a_policy_or_single_functions(tmp_path):
    settings = Settings(instance_path=str(tmp_path), policy="tests.server.desk_policy:DeskPolicy")
    assert isinstance(policy_module.load(settings), DeskPolicy)
    assert type(policy_module.load(Settings(instance_path=str(tmp_path)))) is CibaPolicy
    older = Settings(instance_path=str(tmp_path),
                     binding_message_validator="tests.server.test_policy:no_digits")
    loaded = policy_module.load(older)
    assert isinstance(loaded, FunctionHooks) and loaded.binding_message_validator is no_digits
    with pytest.raises(TypeError):
        policy_module.load(Settings(instance_path=str(tmp_path),
                                    policy="tests.server.test_policy:no_digits"))


def test_the_older_settings_still_change_their_hook(tmp_path, clock):
    settings = Settings(instance_path=str(tmp_path / "i"), issuer=ISSUER,
                        login_hint_resolver="tests.server.test_policy:by_staff_number",
                        binding_message_validator="tests.server.test_policy:no_digits")
    app = create_app(settings, clock=clock)
    provider = app.extensions["ciba"]
    add_user(provider, "alice", "alice-password", email="alice@library.example")
    from server.admin import ClientSpec, add_client

    _, secret = add_client(provider, ClientSpec(client_id="kiosk"))
    http, auth = app.test_client(), {"Authorization": _basic("kiosk", secret)}
    ok = http.post("/bc-authorize", headers=auth,
                   data={"scope": "openid", "login_hint": "E-1001", "binding_message": "DESK"})
    assert ok.status_code == 200, ok.json
    refused = http.post("/bc-authorize", headers=auth,
                        data={"scope": "openid", "login_hint": "E-1001", "binding_message": "D1"})
    assert_error(refused, 400, "invalid_binding_message")
    assert refused.json["error_description"] == "no digits, please"


def _basic(client_id: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def by_staff_number(session, login_hint: str):
    from server.storage import users

    return users.by_username(session, {"E-1001": "alice"}.get(login_hint, ""))


def no_digits(message: str, settings: Settings) -> str | None:
    return "no digits, please" if any(c.isdigit() for c in message) else None


# -- end to end: CIBA_POLICY names the policy of a real server process ------------------------

def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.mark.slow
def test_a_policy_named_in_the_settings_governs_a_real_server(tmp_path):
    env = {"CIBA_POLICY": "tests.server.desk_policy:DeskPolicy", "PYTHONPATH": str(ROOT)}
    with ProviderProcess(tmp_path, env=env) as op:
        alice = op.cli_json("users", "add", "alice", "--password", "alice-pw",
                            "--email", "alice@library.example")
        op.cli_json("users", "add", "bob", "--password", "bob-pw", "--email", "bob@example.com")
        secret = op.cli_json("clients", "add", "desk", "--polling-interval", "1")["client_secret"]
        auth, endpoint = ("desk", secret), op.url("/bc-authorize")

        def start(**form):
            return requests.post(endpoint, auth=auth, timeout=10, data={"scope": "openid", **form})

        refused = start(login_hint="E-1001", binding_message="hello")
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_binding_message")
        assert start(login_hint="alice").json()["error"] == "unknown_user_id"
        assert start(login_hint="E-1002").status_code == 403
        logged_before = len(op.lines)
        started = start(login_hint="E-1001", binding_message="DESK-7")
        assert started.status_code == 200, started.text

        link = op.approval_link("alice", after=logged_before)
        browser = requests.Session()
        page = browser.get(link, timeout=10)
        page = browser.post(link, timeout=10, data={"action": "sign_in", "username": "alice",
                                                    "password": "alice-pw",
                                                    "csrf_token": _csrf(page.text)})
        assert "Prove it is you at the library desk" in page.text and "DESK-7" in page.text
        browser.post(link, timeout=10, data={"action": "accept", "csrf_token": _csrf(page.text)})
        tokens = requests.post(op.url("/token"), auth=auth, timeout=10, data={
            "grant_type": CIBA, "auth_req_id": started.json()["auth_req_id"]})
        assert tokens.status_code == 200, tokens.text
        claims = jwt.decode(tokens.json()["id_token"], _jwks(op)).claims
        assert claims["sub"] == alice["id"]


def _jwks(op):
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(requests.get(op.url("/jwks"), timeout=10).json())
