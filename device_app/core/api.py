"""The provider's device API (docs/device-protocol.md §4 and §6), called with device-auth JWS.

ProviderClient lists and fetches pending login requests and sends signed decisions. Errors come
back as ProviderError carrying the protocol's error code; nothing secret goes into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from joserfc.jwk import ECKey

from .signing import decision_jws, device_auth_jws
from .store import Account

TIMEOUT = 15


class ProviderError(Exception):
    """An error answer (or no answer) from the provider."""

    def __init__(self, error: str, description: str = "", status: int | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status
        self.body = body or {}


def raise_for_error(response: requests.Response) -> None:
    """Turn a non-2xx answer into ProviderError(error, error_description, status)."""
    if response.ok:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error = str(body.get("error") or f"http_{response.status_code}")
    raise ProviderError(error, str(body.get("error_description") or ""), response.status_code, body)


@dataclass(frozen=True)
class DecisionResult:
    """What became of a decision: approved, denied, cancelled, expired or failed (+ a reason).

    ``final`` is False when the answer never reached the provider (network error): the request
    is still pending there and the person may try again.
    """

    outcome: str
    reason: str = ""
    final: bool = True


# Reasons shown to the person when a decision does not go through.
_FAILURE_REASONS = {
    "invalid_token": "The provider did not accept this device's signature.",
    "invalid_request": "The provider refused the answer (the request may have changed).",
    "not_found": "The provider no longer knows this request.",
}


class ProviderClient:
    """One account's view of its provider: base URL, device_id and private key."""

    def __init__(self, account: Account, key: ECKey, session: requests.Session | None = None) -> None:
        self.account = account
        self.key = key
        self.http = session or requests.Session()

    def auth_header(self, method: str, path: str) -> dict[str, str]:
        jws = device_auth_jws(self.key, self.account.device_id, self.account.issuer, method, path)
        return {"Authorization": f"Device {jws}"}

    def _path(self, suffix: str) -> str:
        return urlsplit(self.account.base_url).path.rstrip("/") + suffix

    def _call(self, method: str, suffix: str, **kwargs: Any) -> requests.Response:
        path = self._path(suffix)
        url = self.account.base_url.rstrip("/") + suffix
        try:
            return self.http.request(method, url, headers=self.auth_header(method, path),
                                     timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise ProviderError("network_error", f"Cannot reach the provider ({type(exc).__name__}).") from exc

    def list_requests(self) -> list[dict[str, Any]]:
        """The user's pending, unexpired login requests, newest first."""
        response = self._call("GET", "/device/requests")
        raise_for_error(response)
        items = response.json().get("requests", [])
        return [item for item in items if isinstance(item, dict) and item.get("request_id")]

    def get_request(self, request_id: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/device/requests/{quote(request_id, safe='')}")
        if response.status_code == 404:
            return None
        raise_for_error(response)
        return response.json()

    def decide(self, request_id: str, accept: bool, binding_message: str | None) -> DecisionResult:
        """Send the signed Accept or Deny; map every protocol answer to an outcome."""
        decision = decision_jws(self.key, self.account.device_id, self.account.issuer, request_id,
                                "accept" if accept else "deny", binding_message)
        try:
            response = self._call("POST", f"/device/requests/{quote(request_id, safe='')}/decision",
                                  json={"decision": decision})
            raise_for_error(response)
        except ProviderError as exc:
            return _failed_decision(exc)
        status = str(response.json().get("status", ""))
        if status in ("approved", "denied"):
            return DecisionResult(status)
        return DecisionResult("failed", f"Unexpected answer from the provider ({status or 'no status'}).")

    def report(self, request_id: str) -> dict[str, Any]:
        """“I didn't request this” (docs/device-protocol.md §6a); the provider's answer."""
        response = self._call("POST", f"/device/requests/{quote(request_id, safe='')}/report")
        raise_for_error(response)
        return response.json()

    def websocket_url(self) -> str:
        """The channel URL from enrollment, or ws(s)://<base>/device/ws."""
        url = str(self.account.channel.get("url") or "") if self.account.push == "websocket" else ""
        if not url:
            url = self.account.base_url.rstrip("/") + "/device/ws"
        parts = urlsplit(url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def _failed_decision(exc: ProviderError) -> DecisionResult:
    if exc.error == "already_decided" and exc.body.get("status") in ("approved", "denied"):
        return DecisionResult(str(exc.body["status"]), "Already decided on another device.")
    if exc.error == "already_decided" and exc.body.get("status") == "cancelled":
        return DecisionResult("cancelled", "Too late: the application cancelled this request "
                                           "before your answer arrived. Nothing was approved.")
    if exc.error == "expired" or exc.status == 410:
        return DecisionResult("expired", "The request expired before the answer arrived.")
    if exc.error == "network_error":
        return DecisionResult("failed", "Could not reach the provider. Try again.", final=False)
    reason = _FAILURE_REASONS.get(exc.error) or exc.description or exc.error
    return DecisionResult("failed", reason)
