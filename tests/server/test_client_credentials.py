"""The client_credentials grant (RFC 6749 §4.4): an access token for the client itself."""

from __future__ import annotations

import base64

import pytest

from server import create_app
from server.admin import AdminError

from .ciba_helpers import assert_error, verify_jwt
from .test_postgres import needs_postgres, pg_schema_url  # noqa: F401 (fixture)


@pytest.fixture
def settings(settings):
    settings.api_scopes = "loans:read loans:write"
    return settings


@pytest.fixture
def machine(make_client):
    return make_client("machine", grant_types=["client_credentials"],
                       scope="openid profile loans:read")


def client_credentials(http, creds, **form):
    return http.post("/token", headers=creds.basic(),
                     data={"grant_type": "client_credentials", **form})


def test_access_token_only_with_the_registered_api_scopes(http, machine):
    response = client_credentials(http, machine)
    assert response.status_code == 200, response.json
    body = response.json
    assert response.headers["Cache-Control"] == "no-store"
    # RFC 6749 §4.4.3: no refresh token; no user, so no ID token either.
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "loans:read"  # the default: registered non-user scopes
    claims = verify_jwt(body["access_token"], http.get("/jwks").json, ["ES256"]).claims
    assert claims["sub"] == "machine" and claims["client_id"] == "machine"  # RFC 9068 §2.2
    introspected = http.post("/introspect", headers=machine.basic(),
                             data={"token": body["access_token"]}).json
    assert introspected["active"] is True and introspected["sub"] == "machine"
    # UserInfo has no user to describe (no openid scope in the token).
    userinfo = http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 403


@pytest.mark.parametrize("scope", ["openid", "profile", "loans:write", "loans:read offline_access",
                                   "unknown"])
def test_scopes_beyond_the_registration_or_about_users_are_invalid_scope(http, machine, scope):
    assert_error(client_credentials(http, machine, scope=scope), 400, "invalid_scope")


def test_client_credentials_tokens_are_audited(http, provider, machine):
    """Issue 11's audit log records every token issue, client_credentials ones too (no user)."""
    from server.storage import audit as audit_repo

    assert client_credentials(http, machine).status_code == 200
    with provider.db.session() as s:
        issued = [e for e in audit_repo.oldest_first(s, audit_repo.AuditFilter(
            event="token_issued"))]
        assert [(e.actor, e.client_id, e.user_id) for e in issued] == [
            ("client:machine", "machine", None)]
        assert "loans:read" in issued[0].detail and "access_token" not in issued[0].detail


def test_asking_for_a_registered_scope(http, machine):
    assert client_credentials(http, machine, scope="loans:read").json["scope"] == "loans:read"


def test_a_client_not_registered_for_the_grant_is_unauthorized(http, kiosk):
    assert_error(client_credentials(http, kiosk), 400, "unauthorized_client")


def test_wrong_secret_is_invalid_client(http, machine):
    machine.secret = "wrong"
    assert_error(client_credentials(http, machine), 401, "invalid_client")


def test_discovery_lists_the_grant(http):
    grants = http.get("/.well-known/openid-configuration").json["grant_types_supported"]
    assert "client_credentials" in grants


@pytest.mark.parametrize("grant", ["password", "authorization_code", "implicit"])
def test_registration_refuses_grant_types_the_provider_does_not_implement(make_client, grant):
    with pytest.raises(AdminError, match="unsupported grant type"):
        make_client("nope", grant_types=[grant])


@pytest.mark.parametrize("header", ["Basic ", "Basic", "Basic !!!", "Basic " +
                                    base64.b64encode(b"\xff\xfe:x").decode()])
def test_a_malformed_basic_header_is_invalid_client_not_a_500(http, kiosk, header):
    response = http.post("/token", headers={"Authorization": header},
                         data={"grant_type": "client_credentials"})
    assert_error(response, 401, "invalid_client")
    response = http.post("/bc-authorize", headers={"Authorization": header},
                         data={"scope": "openid", "login_hint": "alice"})
    assert_error(response, 401, "invalid_client")


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=[
    pytest.mark.postgres, needs_postgres])])
def test_a_database_from_before_accepts_client_credentials_tokens(tmp_path, clock, request,
                                                                  database):
    """tokens.user_id was NOT NULL: the upgrade at start relaxes it, keeping the rows."""
    from sqlalchemy import create_engine, text

    from server.admin import ClientSpec, add_client
    from server.config import Settings

    url = "sqlite:///" + str(tmp_path / "old.db")
    if database == "postgresql":
        url = request.getfixturevalue("pg_schema_url")
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(text("CREATE TABLE tokens (id VARCHAR(64) PRIMARY KEY, grant_id VARCHAR(64) "
                          "NOT NULL, client_id VARCHAR(255) NOT NULL, user_id VARCHAR(64) NOT "
                          "NULL, scope TEXT NOT NULL, access_jti VARCHAR(64) NOT NULL UNIQUE, "
                          "access_expires_at FLOAT NOT NULL, refresh_token_hash VARCHAR(64) "
                          "UNIQUE, refresh_expires_at FLOAT, revoked BOOLEAN NOT NULL, rotated "
                          "BOOLEAN NOT NULL, auth_time FLOAT, acr VARCHAR(255), created_at FLOAT "
                          "NOT NULL)"))
        conn.execute(text("CREATE INDEX ix_tokens_grant_id ON tokens (grant_id)"))
        conn.execute(text("INSERT INTO tokens VALUES ('t1', 'g1', 'kiosk', 'u1', 'openid', 'j1', "
                          "1, NULL, NULL, false, false, NULL, NULL, 1)"))
    old.dispose()
    app = create_app(Settings(instance_path=str(tmp_path / "i"), issuer="http://op.test",
                              database_url=url, api_scopes="loans:read"), clock=clock)
    provider = app.extensions["ciba"]
    _, secret = add_client(provider, ClientSpec("machine", grant_types=["client_credentials"],
                                                scope="loans:read"))
    response = app.test_client().post("/token", auth=("machine", secret),
                                      data={"grant_type": "client_credentials"})
    assert response.status_code == 200, response.json
    from server.storage.models import Token

    with provider.db.session() as s:
        assert s.get(Token, "t1").user_id == "u1"  # the old row survived
        assert s.query(Token).count() == 2
    provider.db.dispose()
