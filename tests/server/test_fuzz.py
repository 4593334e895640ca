"""Schema-driven fuzzing of every operation of /openapi.json against a real ``ciba-provider
serve`` (issue 13), with Schemathesis. Fails on any 5xx, a hang (no answer in 15 s), or a
response whose status, content type, headers or body the description does not allow.

The budget is fixed (EXAMPLES per operation, derandomized: the same cases every run). Valid
credentials are sent where an operation needs them (a client's Basic secret, a fresh
device-auth JWS for the exact path, a real access token, an initial access token, a
registration access token with its client's path, an operator's session cookie for the
console), so the fuzz reaches past authentication; the cases also carry whatever Schemathesis
generates itself. Console and passkey forms still stop at their CSRF check (a token the fuzz
cannot know), which is what an attacker's forged form meets.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)

from tests.support.provider_process import ProviderProcess

from .devices.realworld import KIOSK, Phone, seed, signed_in

pytestmark = pytest.mark.slow

EXAMPLES = 15
APPROVAL_TOKEN = "fuzz-approval-token-0123456789"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@dataclass
class Credentials:
    """What legitimate callers hold: a device key, tokens, a registration, an operator session."""

    phone: Phone
    access_token: str
    initial_access_token: str
    registered_client_id: str
    registration_access_token: str
    operator_session: str


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    env = {"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL_TOKEN}
    with ProviderProcess(tmp_path_factory.mktemp("fuzz"), env=env) as op:
        seed(op)
        op.cli("users", "add", "olga", "--password", "olga-password", "--admin")
        offer = op.cli("devices", "enroll", "alice").strip().splitlines()[-1]
        phone = Phone(op.issuer).enroll(offer, "Fuzz phone")
        initial = op.cli("clients", "registration-token").strip().splitlines()[-1]
        registered = requests.post(op.url("/register"), timeout=10, json={
            "client_name": "Fuzzed registration", "backchannel_token_delivery_mode": "poll",
            "grant_types": ["urn:openid:params:grant-type:ciba"], "scope": "openid"},
            headers={"Authorization": f"Bearer {initial}"}).json()
        operator = signed_in(op, "olga", "olga-password")
        yield op, Credentials(phone, _access_token(op), initial, registered["client_id"],
                              registered["registration_access_token"],
                              operator.cookies["session"])


def _access_token(op: ProviderProcess) -> str:
    r = requests.post(op.url("/bc-authorize"), auth=KIOSK, timeout=10,
                      data={"scope": "openid email", "login_hint": "alice"})
    auth_req_id = r.json()["auth_req_id"]
    requests.post(op.url("/testing/ciba-approval"), timeout=10,
                  headers={"Authorization": f"Bearer {APPROVAL_TOKEN}"},
                  data={"auth_req_id": auth_req_id, "action": "allow"}).raise_for_status()
    tokens = requests.post(op.url("/token"), auth=KIOSK, timeout=10, data={
        "grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": auth_req_id}).json()
    return tokens["access_token"]


def _schema():
    from server.config import Settings
    from server.openapi import document

    spec = document("http://127.0.0.1", Settings(automated_approval_token=APPROVAL_TOKEN))
    return schemathesis.openapi.from_dict(spec)


SCHEMA = _schema()
OPERATIONS = {f"{o.method.upper()} {o.path}": o
              for o in (result.ok() for result in SCHEMA.get_all_operations())}


def credentials(case, creds: Credentials) -> dict:
    """The Authorization header (or session cookie) a legitimate caller of this operation would
    send. For reading and replacing a registration, the path names the registered client."""
    if case.headers and any(k.lower() == "authorization" for k in case.headers):
        return {}
    security = case.operation.definition.raw.get("security") or []
    schemes = {name for requirement in security for name in requirement}
    if "clientBasic" in schemes:
        return {"Authorization": "Basic " + base64.b64encode(":".join(KIOSK).encode()).decode()}
    if "device" in schemes:
        path = unquote(case.formatted_path)
        return {"Authorization": "Device " + creds.phone.auth(case.method.upper(), path)}
    if "bearer" in schemes:
        token = APPROVAL_TOKEN if case.path.startswith("/testing/") else creds.access_token
        return {"Authorization": f"Bearer {token}"}
    if "initialAccessToken" in schemes:
        return {"Authorization": f"Bearer {creds.initial_access_token}"}
    if "registrationAccessToken" in schemes:
        if case.method.upper() in ("GET", "PUT"):  # DELETE: a random client_id (401)
            case.path_parameters = {**(case.path_parameters or {}),
                                    "client_id": creds.registered_client_id}
        return {"Authorization": f"Bearer {creds.registration_access_token}"}
    if "operatorSession" in schemes:
        return {"Cookie": f"session={creds.operator_session}"}
    return {}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_survives_generated_input(label, fuzz_target):
    op, creds = fuzz_target
    operation = OPERATIONS[label]
    cases = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                      operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(base_url=op.url(), checks=CHECKS, timeout=15,
                               headers=credentials(case, creds),
                               allow_redirects=False)

    fuzz()


def test_the_fuzz_covers_every_described_operation():
    assert len(OPERATIONS) >= 30 and "POST /bc-authorize" in OPERATIONS
