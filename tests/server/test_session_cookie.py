"""The browser session cookie (server/web/session_cookie.py: Flask's signed cookie, its
serializer made once per secret key): a signed-in session survives across requests, a cookie
signed under another key is refused, and a changed key is used at once."""

from __future__ import annotations

from flask import session

from server.web.session_cookie import CookieSessions


def _app_with_counter(app):
    @app.get("/_count")
    def count():
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"]}

    return app


def test_the_provider_uses_it(app):
    assert isinstance(app.session_interface, CookieSessions)


def test_a_session_lasts_and_a_cookie_under_another_key_is_refused(app):
    _app_with_counter(app)
    http = app.test_client()
    assert [http.get("/_count").json["n"] for _ in range(3)] == [1, 2, 3]
    cookie = http.get_cookie("session").value
    old_key = app.secret_key
    app.secret_key = "another-secret-key-of-the-operator-0123456789"
    fresh = app.test_client()
    fresh.set_cookie("session", cookie)
    assert fresh.get("/_count").json["n"] == 1  # the old signature is refused: a new session
    resigned = fresh.get_cookie("session").value
    app.secret_key = old_key
    back = app.test_client()
    back.set_cookie("session", resigned)
    assert back.get("/_count").json["n"] == 1  # and the other way round
    again = app.test_client()
    again.set_cookie("session", cookie)
    assert again.get("/_count").json["n"] == 4  # the first key's cookie is good again


def test_a_fallback_key_still_opens_older_cookies(app):
    _app_with_counter(app)
    http = app.test_client()
    http.get("/_count")
    cookie = http.get_cookie("session").value
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "the-rotated-secret-key-0123456789abcdef"
    rotated = app.test_client()
    rotated.set_cookie("session", cookie)
    assert rotated.get("/_count").json["n"] == 2
