"""Issue 11's tables on each supported database (SQLite always, PostgreSQL when
CIBA_TEST_POSTGRES_URL is set): dynamic registration with its tokens, the sign-in guard's
counts, and the audit log they write."""

from __future__ import annotations

import re

from server.admin import add_user
from server.registration import issue_initial_token
from server.storage import audit as audit_repo

from .test_postgres import database_url, db_app, pg_schema_url  # noqa: F401  (fixtures)


def test_registration_lockout_and_audit(db_app):  # noqa: F811
    provider = db_app.extensions["ciba"]
    add_user(provider, "alice", "alice-password")
    http = db_app.test_client()
    token = issue_initial_token(provider, "pg", 600, True, "operator:olga")[0]
    r = http.post("/register", headers={"Authorization": f"Bearer {token}"},
                  json={"backchannel_token_delivery_mode": "poll", "client_name": "PG"})
    assert r.status_code == 201, r.get_json()
    path = r.json["registration_client_uri"].removeprefix("http://op.test")
    r = http.put(path, headers={"Authorization": f"Bearer {r.json['registration_access_token']}"},
                 json={"client_id": r.json["client_id"], "backchannel_token_delivery_mode": "poll",
                       "client_name": "PG 2"})
    assert r.status_code == 200 and r.json["client_name"] == "PG 2"
    settings = provider.settings
    for n in range(settings.signin_max_failures):
        page = http.get("/account/login")
        token_field = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
        http.post("/account/login", data={"username": "alice", "password": f"guess-{n}",
                                          "csrf_token": token_field.group(1)})
        provider.clock.advance(settings.signin_max_delay)
    page = http.get("/account/login")
    token_field = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    r = http.post("/account/login", data={"username": "alice", "password": "alice-password",
                                          "csrf_token": token_field.group(1)})
    assert r.status_code == 401
    with provider.db.session() as s:
        events = [row.event for row in audit_repo.oldest_first(s, audit_repo.AuditFilter())]
    assert events[:4] == ["user_created", "registration_token_created", "client_created",
                          "client_updated"]
    assert events.count("sign_in_failed") == settings.signin_max_failures + 1
    assert "sign_in_locked" in events


def test_an_older_database_gains_the_new_client_columns(tmp_path):
    from server.storage.models import Client
    from tests.support.old_database import upgraded_old_sqlite

    db = upgraded_old_sqlite(
        tmp_path / "old.db",
        *[f"ALTER TABLE clients DROP COLUMN {column}"
          for column in ("jwks_uri", "self_registered", "registration_token_hash")],
        "INSERT INTO clients (client_id, name, auth_method, grant_types, scope, delivery_mode, "
        "user_code_required, created_at) VALUES ('old', '', 'client_secret_basic', "
        "'refresh_token', 'openid', 'poll', 0, 0)")
    with db.session() as s:
        old = s.get(Client, "old")
        assert (old.self_registered, old.jwks_uri, old.registration_token_hash) == (
            False, None, None)
