"""Discovery (OIDC Discovery 1.0 §3, RFC 8414) with the CIBA metadata of CIBA Core 1.0 §4."""

from __future__ import annotations

import pytest

from server import create_app
from server.config import Settings

ISSUER = "http://op.test"
CIBA = "urn:openid:params:grant-type:ciba"
WELL_KNOWN = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]


@pytest.fixture
def metadata(http) -> dict:
    response = http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


@pytest.mark.parametrize("field, value", [
    ("issuer", ISSUER),
    ("backchannel_authentication_endpoint", ISSUER + "/bc-authorize"),
    ("token_endpoint", ISSUER + "/token"),
    ("jwks_uri", ISSUER + "/jwks"),
    ("userinfo_endpoint", ISSUER + "/userinfo"),
    ("introspection_endpoint", ISSUER + "/introspect"),
    ("revocation_endpoint", ISSUER + "/revoke"),
    ("backchannel_user_code_parameter_supported", True),
    ("subject_types_supported", ["public"]),
])
def test_field(metadata, field, value):
    assert metadata[field] == value


@pytest.mark.parametrize("field, members", [
    ("backchannel_token_delivery_modes_supported", {"poll"}),
    ("grant_types_supported", {CIBA, "refresh_token"}),
    ("token_endpoint_auth_methods_supported",
     {"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"}),
    ("id_token_signing_alg_values_supported", {"RS256", "ES256", "PS256"}),
    ("scopes_supported", {"openid", "profile", "email", "offline_access"}),
    ("token_endpoint_auth_signing_alg_values_supported", {"HS256", "RS256", "ES256"}),
    ("claims_supported", {"sub", "iss", "aud", "exp", "iat"}),
])
def test_lists_contain(metadata, field, members):
    assert members <= set(metadata[field])


def test_both_well_known_documents_agree(http):
    first, second = (http.get(path).json for path in WELL_KNOWN)
    assert first == second


@pytest.mark.parametrize("field", ["backchannel_authentication_endpoint", "token_endpoint",
                                   "introspection_endpoint", "revocation_endpoint"])
def test_advertised_post_endpoints_exist(http, metadata, field):
    path = metadata[field].removeprefix(ISSUER)
    response = http.post(path, data={})
    assert response.status_code in (400, 401), (path, response.status_code)
    assert "error" in response.json


@pytest.mark.parametrize("field, status", [("jwks_uri", 200), ("userinfo_endpoint", 401)])
def test_advertised_get_endpoints_exist(http, metadata, field, status):
    assert http.get(metadata[field].removeprefix(ISSUER)).status_code == status


def test_testing_endpoint_not_advertised_by_default(metadata):
    assert not any("testing" in str(v) for v in metadata.values())


def test_issuer_follows_settings(tmp_path, clock):
    app = create_app(Settings(instance_path=str(tmp_path / "other"),
                              issuer="https://id.example.org/"), clock=clock)
    body = app.test_client().get("/.well-known/openid-configuration").json
    assert body["issuer"] == "https://id.example.org"
    assert body["token_endpoint"] == "https://id.example.org/token"
