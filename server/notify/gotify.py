"""A small client of Gotify's REST API (spec 2.1.0), used to reach devices through Gotify.

The provider keeps one Gotify user per provider user (created by the Gotify admin), one
application per user (whose token sends that user's login notifications) and one Gotify client
per enrolled device (whose token the device uses on ``GET /stream``).

Every call has a timeout and at most ``attempts`` tries: a refused or dropped connection or a
502/503/504 answer is tried again after a short backoff; anything else fails at once. Failures
raise :class:`GotifyError` carrying the HTTP status and Gotify's ``errorDescription`` (spec
``Error`` model). Tokens and passwords are never logged nor put into exception messages or URLs.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})


class GotifyError(Exception):
    """A Gotify call failed. ``status`` is None when the server could not be reached."""

    def __init__(self, operation: str, status: int | None, description: str) -> None:
        super().__init__(f"Gotify {operation} failed: "
                         f"{status if status is not None else 'unreachable'} {description}")
        self.operation, self.status, self.description = operation, status, description


class GotifyAdmin:
    """Manages users, applications and clients of one Gotify server and posts messages."""

    def __init__(self, base_url: str, admin_user: str, admin_password: str,
                 session: requests.Session | None = None, timeout: float = 5,
                 attempts: int = 2, backoff: float = 0.2) -> None:
        self.base_url = base_url.rstrip("/")
        self._admin = (admin_user, admin_password)
        self._session = session or requests.Session()
        self.timeout, self.attempts, self.backoff = timeout, max(1, attempts), backoff

    def ensure_user(self, name: str, password: str) -> int:
        """Make sure Gotify user ``name`` exists with ``password``; returns its id.

        getUsers (GET /user) as admin; if absent createUser (POST /user, ``admin: false``),
        if present updateUser (POST /user/{id}) so that the password is the one the provider
        holds. The admin account itself is refused.
        """
        if name == self._admin[0]:
            raise ValueError("refusing to manage the Gotify admin account as a provider user")
        users = self._call("getUsers", "GET", "/user", self._admin)
        existing = next((u for u in users if u["name"] == name), None)
        body = {"name": name, "pass": password, "admin": False}
        if existing is None:
            return int(self._call("createUser", "POST", "/user", self._admin, json=body)["id"])
        body["admin"] = existing["admin"]
        self._call("updateUser", "POST", f"/user/{int(existing['id'])}", self._admin, json=body)
        return int(existing["id"])

    def create_application(self, user_name: str, user_password: str, name: str,
                           description: str) -> tuple[int, str]:
        """createApp (POST /application) as the user; returns (app id, app token)."""
        app = self._call("createApp", "POST", "/application", (user_name, user_password),
                         json={"name": name, "description": description})
        return int(app["id"]), app["token"]

    def create_client(self, user_name: str, user_password: str, name: str) -> tuple[int, str]:
        """createClient (POST /client) as the user; returns (client id, client token)."""
        client = self._call("createClient", "POST", "/client", (user_name, user_password),
                            json={"name": name})
        return int(client["id"]), client["token"]

    def delete_client(self, user_name: str, user_password: str, client_id: int) -> bool:
        """deleteClient (DELETE /client/{id}) as the user (basic auth counts as elevated).

        Gotify closes that client's streams. Returns False if the client was already gone.
        """
        try:
            self._call("deleteClient", "DELETE", f"/client/{int(client_id)}",
                       (user_name, user_password))
        except GotifyError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def post_message(self, app_token: str, title: str, message: str, extras: dict[str, Any],
                     priority: int = 8) -> int:
        """createMessage (POST /message) with the application token in ``X-Gotify-Key``.

        ``extras`` keys should be namespaced ``<top>::[<sub>::]<action>`` (CreateMessage model).
        Returns the message id.
        """
        body = {"title": title, "message": message, "priority": priority, "extras": extras}
        sent = self._call("createMessage", "POST", "/message", None, json=body,
                          headers={"X-Gotify-Key": app_token})
        return int(sent["id"])

    def health(self) -> dict[str, str]:
        """getHealth (GET /health, no authentication): ``{"health": ..., "database": ...}``."""
        return self._call("getHealth", "GET", "/health", None)

    def _call(self, operation: str, method: str, path: str, auth: tuple[str, str] | None,
              **kwargs: Any) -> Any:
        """One spec operation with bounded retries; returns the parsed JSON body (or None)."""
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = self._session.request(method, self.base_url + path, auth=auth,
                                                 timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                log.warning("gotify %s: attempt %d/%d: %s", operation, attempt, self.attempts,
                            type(exc).__name__)
                # a POST that timed out while reading may have been applied: do not repeat it
                repeatable = method != "POST" or not isinstance(exc, requests.ReadTimeout)
                if last or not repeatable:
                    raise GotifyError(operation, None, type(exc).__name__) from None
            else:
                if response.ok:
                    return _json(operation, response)
                log.warning("gotify %s: attempt %d/%d: HTTP %d", operation, attempt,
                            self.attempts, response.status_code)
                if last or response.status_code not in RETRY_STATUSES:
                    raise GotifyError(operation, response.status_code, _description(response))
            time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")


def _json(operation: str, response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise GotifyError(operation, response.status_code, "response is not JSON") from None


def _description(response: requests.Response) -> str:
    """Gotify's errorDescription (Error model), else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errorDescription"), str):
        return body["errorDescription"]
    return response.reason or ""
