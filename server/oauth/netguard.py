"""Where a self-registered client may make the provider send requests (a guard against SSRF).

A client that registers itself (RFC 7591) chooses its ``backchannel_client_notification_endpoint``;
the provider then POSTs to it (CIBA §10.2, §10.3). Unchecked, anyone holding an initial access
token could aim those POSTs at the provider's own network. So such an endpoint must be https
(CIBA §4: "This URL MUST use the https scheme") and every address its host resolves to must be
public: no loopback, private, link-local, shared, reserved or multicast address. The check runs
at registration, again right before each delivery (DNS may have changed in between), and once
more at connect time: ``public_only_session`` connects only to an address it has just checked,
so a name that rebinds between the check and the connection cannot reach the private network.

Operator-registered clients are trusted and may use any https (or loopback http) endpoint;
``refuse_reason`` then only feeds a warning.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (what a connection could reach)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def refuse_reason(url: str, resolver: Resolver | None = None) -> str | None:
    """None when ``url`` is https on a host whose every address is public; else why not."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        return "is not a valid URL"
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https URL"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if parts.fragment:
        return "must not contain a fragment"
    try:
        addresses = (resolver or resolve)(parts.hostname, port)
    except (OSError, UnicodeError, ValueError):
        return f"names a host that does not resolve ({parts.hostname})"
    if not addresses:
        return f"names a host that does not resolve ({parts.hostname})"
    return _private_among(addresses)


def _private_among(addresses: list[str]) -> str | None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return f"resolves to an address that is not public ({address})"
    return None


class _PublicOnlyConnection(HTTPSConnection):
    """Resolves the host itself and connects to an address it has just checked, so a name
    that changes between ``refuse_reason`` and the connection (DNS rebinding) cannot steer it
    to a private address. TLS still names and verifies the host, not the address."""

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        try:
            addresses = resolve(host, self.port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise NewConnectionError(self, f"{host} does not resolve ({exc})") from None
        reason = _private_among(addresses) if addresses else "does not resolve"
        if reason:
            raise NewConnectionError(self, f"{host} {reason}")
        self._dns_host = addresses[0]
        try:
            return super()._new_conn()
        finally:
            self._dns_host = host


class _PublicOnlyPool(HTTPSConnectionPool):
    ConnectionCls = _PublicOnlyConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _PublicOnlyPool}


def public_only_session() -> requests.Session:
    """A requests session for self-registered clients' URLs: https only, and every connection
    to a public address checked at connect time (see ``_PublicOnlyConnection``)."""
    session = requests.Session()
    session.mount("http://", _Refuse())
    session.mount("https://", _PublicOnlyAdapter())
    return session


class _Refuse(HTTPAdapter):
    def send(self, request, **kwargs):
        raise requests.ConnectionError(f"not an https URL: {request.url}")
