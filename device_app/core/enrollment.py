"""Enrollment (docs/device-protocol.md §1 and §2): read the enrollment URI, make a key, enroll.

Both forms of the URI are accepted:

- ``ciba-enroll://enroll?base=<url-encoded base URL>&code=<code>``
- ``{base}/device/enroll?code=<code>`` (``base`` is everything before ``/device/enroll``)
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

from .api import ProviderError, raise_for_error
from .keys import generate_key, public_jwk
from .store import Account, AccountStore

ENROLL_PATH = "/device/enroll"
TIMEOUT = 15


class EnrollmentLinkError(ValueError):
    """The text is not an enrollment link this app understands."""


@dataclass(frozen=True)
class EnrollmentLink:
    base_url: str
    code: str


def parse_enrollment_uri(text: str) -> EnrollmentLink:
    """The provider base URL and the one-time code carried by an enrollment link or QR code."""
    text = (text or "").strip()
    parts = urlsplit(text)
    query = parse_qs(parts.query)
    code = (query.get("code") or [""])[0].strip()
    if parts.scheme == "ciba-enroll":
        base = (query.get("base") or [""])[0].strip()
    elif parts.scheme in ("http", "https") and parts.path.rstrip("/").endswith(ENROLL_PATH):
        prefix = parts.path.rstrip("/")[: -len(ENROLL_PATH)]
        base = f"{parts.scheme}://{parts.netloc}{prefix}"
    else:
        raise EnrollmentLinkError("This is not an enrollment link (ciba-enroll://… or …/device/enroll?code=…).")
    base_parts = urlsplit(base)
    if base_parts.scheme not in ("http", "https") or not base_parts.netloc:
        raise EnrollmentLinkError("The enrollment link does not name a provider (https://…).")
    if not code:
        raise EnrollmentLinkError("The enrollment link has no code.")
    return EnrollmentLink(base_url=base.rstrip("/"), code=code)


MAX_DISPLAY_NAME = 100  # the provider's limit


def default_display_name() -> str:
    return f"CIBA device on {socket.gethostname()}"[:MAX_DISPLAY_NAME]


def enroll(
    store: AccountStore,
    link: EnrollmentLink,
    display_name: str | None = None,
    push: str = "websocket",
    session: requests.Session | None = None,
) -> Account:
    """Enroll with the provider named by ``link``; store the account and its private key.

    The key is made here and only its public half is sent. Raises ProviderError with the
    provider's error code (invalid_code, invalid_request, too_many_requests, network_error).
    """
    key = generate_key()
    display_name = (display_name or default_display_name())[:MAX_DISPLAY_NAME]
    body = {"code": link.code, "jwk": public_jwk(key), "display_name": display_name, "push": push}
    http = session or requests.Session()
    try:
        response = http.post(link.base_url + ENROLL_PATH, json=body, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise ProviderError("network_error", f"Cannot reach {link.base_url}: {type(exc).__name__}") from exc
    raise_for_error(response)
    data = response.json()
    if not isinstance(data, dict) or not data.get("device_id"):
        raise ProviderError("invalid_response", "The provider's answer has no device_id.")
    account = Account.from_enrollment(link.base_url, data, display_name)
    store.keys.save(account.device_id, key)
    store.add(account)
    return account
