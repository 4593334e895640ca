"""Notification modes (CLI and the account page, CSRF-protected), the operator page /admin,
and the additive schema upgrade for ``users.is_admin``. The Gotify server is the spec-built
fake (tests/support/gotify_server.py) on 127.0.0.1."""

from __future__ import annotations


import pytest

from server import cli
from server.storage import users

from .conftest import csrf


def mode_of(provider, username: str = "alice") -> str:
    with provider.db.session() as s:
        return users.by_username(s, username).notification_mode


def run_cli(settings, *args: str) -> int:
    return cli.main([*args, "--instance", settings.instance_path])


@pytest.mark.parametrize("mode, stored", [("gotify", "gotify"), ("console", "console"),
                                          ("websocket", "websocket"), ("auto", "")])
def test_cli_sets_the_mode(settings, provider, alice, capsys, mode, stored):
    assert run_cli(settings, "users", "notify", "alice", "--mode", mode) == 0
    assert mode_of(provider) == stored
    assert f"alice: notification mode {mode}" in capsys.readouterr().out


def test_cli_mode_for_an_unknown_user(settings, provider, capsys):
    assert run_cli(settings, "users", "notify", "nobody", "--mode", "console") == 2
    assert "no user named 'nobody'" in capsys.readouterr().err


def test_cli_gotify_mode_routes_requests_to_gotify(settings, provider, alice, gphone):
    assert provider.channel_mode_for(_user(provider)) == "gotify"  # default: the device's push
    run_cli(settings, "users", "notify", "alice", "--mode", "console")
    assert provider.channel_mode_for(_user(provider)) == "console"


def _user(provider, username: str = "alice"):
    with provider.db.session() as s:
        user = users.by_username(s, username)
        s.expunge(user)
    return user


def test_cli_admin_flags(settings, provider, alice):
    assert run_cli(settings, "users", "add", "olga", "--password", "pw-olga-1", "--admin") == 0
    assert _user(provider, "olga").is_admin
    assert not _user(provider).is_admin
    assert run_cli(settings, "users", "set-admin", "alice") == 0
    assert _user(provider).is_admin
    assert run_cli(settings, "users", "set-admin", "alice", "--revoke") == 0
    assert not _user(provider).is_admin


def test_serve_takes_gotify_flags():
    args = cli.build_parser().parse_args(["serve", "--gotify-url", "https://push.example",
                                          "--gotify-admin-user", "ops",
                                          "--gotify-admin-password", "pw"])
    settings = cli.settings_from(args)
    assert (settings.gotify_url, settings.gotify_admin_user, settings.gotify_admin_password) == (
        "https://push.example", "ops", "pw")


def test_account_page_shows_the_mode_and_gotify(browser, alice, gotify):
    page = browser().get("/account/").get_data(as_text=True)
    assert 'id="notification-form"' in page
    assert 'data-mode="console"' in page  # no device yet
    assert gotify.url in page and "green" in page
    assert '<option value="gotify"' in page
    assert "gotify-admin-pw" not in page


def test_account_page_changes_the_mode(browser, alice, provider):
    client = browser()
    page = client.get("/account/")
    r = client.post("/account/notifications/", data={"mode": "gotify", "csrf_token": csrf(page)})
    assert r.status_code == 302
    assert mode_of(provider) == "gotify"
    page = client.get("/account/").get_data(as_text=True)
    assert 'data-mode="gotify"' in page and "now reach you by" in page
    client.post("/account/notifications/", data={"mode": "", "csrf_token": csrf(client.get(
        "/account/"))})
    assert mode_of(provider) == ""


def test_account_mode_form_needs_the_csrf_token(browser, alice, provider):
    r = browser().post("/account/notifications/", data={"mode": "console"})
    assert r.status_code == 400
    r = browser().post("/account/notifications/", data={"mode": "console", "csrf_token": "x"})
    assert r.status_code == 400
    assert mode_of(provider) == ""


def test_account_mode_form_refuses_unknown_modes(browser, alice, provider):
    client = browser()
    r = client.post("/account/notifications/", data={"mode": "carrier-pigeon",
                                                      "csrf_token": csrf(client.get("/account/"))})
    assert r.status_code == 400
    assert mode_of(provider) == ""


def test_admin_page_is_for_operators(browser, alice, app):
    assert app.test_client().get("/admin/").status_code == 302  # to the login page
    assert browser().get("/admin/").status_code == 403


def test_admin_page_lists_gotify_users_and_clients(browser, alice, gphone, provider, gotify,
                                                   kiosk, settings):
    run_cli(settings, "users", "set-admin", "alice")
    run_cli(settings, "users", "add", "bob", "--password", "bob-pw-123")
    run_cli(settings, "users", "notify", "bob", "--mode", "console")
    page = browser().get("/admin/").get_data(as_text=True)
    assert gotify.url in page and "root" in page and "gotify-admin-pw" not in page
    assert 'id="no-failures"' in page
    alice_row = page.split('data-username="alice"')[1].split("</tr>")[0]
    assert ">auto<" in alice_row and ">gotify<" in alice_row and 'class="devices">1<' in alice_row
    bob_row = page.split('data-username="bob"')[1].split("</tr>")[0]
    assert ">console<" in bob_row and 'class="devices">0<' in bob_row
    assert "kiosk" in page and "Library kiosk" in page


def test_admin_page_without_gotify(tmp_path):
    from server import create_app
    from server.admin import add_user
    from server.admin_users import set_admin
    from server.config import Settings

    app = create_app(Settings(instance_path=str(tmp_path / "i"), issuer="http://op.test"))
    p = app.extensions["ciba"]
    add_user(p, "olga", "olga-password")
    set_admin(p, "olga", True)
    client = app.test_client()
    page = client.get("/account/login")
    client.post("/account/login", data={"username": "olga", "password": "olga-password",
                                        "csrf_token": csrf(page)})
    text = client.get("/admin/").get_data(as_text=True)
    assert "Not configured" in text
    assert '<option value="gotify"' not in client.get("/account/").get_data(as_text=True)


def test_an_older_database_gains_the_new_columns(tmp_path):
    from tests.support.old_database import upgraded_old_sqlite

    db = upgraded_old_sqlite(
        tmp_path / "old.db", "ALTER TABLE users DROP COLUMN is_admin",
        "INSERT INTO users (id, username, name, password_hash, notification_mode, disabled, "
        "created_at) VALUES ('u1', 'old', '', 'x', '', 0, 0)")
    with db.session() as s:
        assert users.by_username(s, "old").is_admin is False
