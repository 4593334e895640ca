"""A client's public keys published at its ``jwks_uri`` (RFC 7591 §2), fetched and cached, so
that a client can rotate its keys without telling the provider.

- A document is fetched at most once per ``ttl`` seconds per URI, and again sooner when a
  signature names a kid the cached set lacks (``refresh``), but not more often than every
  ``min_refresh`` seconds, so a stream of bad kids cannot make the provider hammer the client.
- A fetch takes at most ``timeout`` seconds and ``MAX_BYTES``, follows no redirect, and must
  give a JSON object with a ``keys`` list of public keys (parsed with server/jsonsafe.py).
- ``guarded`` (a self-registered client, RFC 7591): the URI must pass the SSRF rule of
  oauth/netguard.py at every fetch (DNS may have changed since registration), and the fetch
  connects only to an address checked at connect time (``netguard.public_only_session``).
- A fetch that fails keeps serving the cached set; with nothing cached it raises LookupError,
  which the callers turn into the protocol's error (invalid_client, invalid_request).
"""

from __future__ import annotations

import logging
import threading
import time

import requests

from .. import jsonsafe
from . import netguard

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024


class JwksCache:
    def __init__(self, ttl: float = 300.0, min_refresh: float = 10.0, timeout: float = 5.0) -> None:
        self.ttl, self.min_refresh, self.timeout = ttl, min_refresh, timeout
        self._docs: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()
        self.http = requests.Session()
        self.guarded_http = netguard.public_only_session()

    def get(self, uri: str, refresh: bool = False, guarded: bool = False) -> dict:
        """The JWKS document at ``uri``; LookupError (with a reason fit for an error
        description) when it cannot be fetched and none is cached."""
        now = time.monotonic()
        with self._lock:
            cached = self._docs.get(uri)
        if cached and now - cached[0] < self.ttl and not (
                refresh and now - cached[0] >= self.min_refresh):
            return cached[1]
        try:
            doc = self._fetch(uri, guarded)
        except LookupError as exc:
            log.warning("cannot fetch the client JWKS at %s: %s", uri, exc)
            if cached:
                return cached[1]
            raise
        with self._lock:
            self._docs[uri] = (now, doc)
        return doc

    def forget(self, uri: str) -> None:
        with self._lock:
            self._docs.pop(uri, None)

    def _fetch(self, uri: str, guarded: bool) -> dict:
        if guarded:
            reason = netguard.refuse_reason(uri)
            if reason:
                raise LookupError(f"the client's jwks_uri {reason}")
        try:
            http = self.guarded_http if guarded else self.http
            with http.get(uri, timeout=self.timeout, allow_redirects=False, stream=True,
                               headers={"Accept": "application/json"}) as response:
                raw = response.raw.read(MAX_BYTES + 1, decode_content=True)
                status = response.status_code
        except requests.RequestException as exc:
            raise LookupError(f"the client's jwks_uri could not be fetched "
                              f"({type(exc).__name__})") from None
        if status != 200:
            raise LookupError(f"the client's jwks_uri answered HTTP {status}")
        if len(raw) > MAX_BYTES:
            raise LookupError("the client's JWKS is too large")
        try:
            doc = jsonsafe.loads(raw)
        except jsonsafe.JSONInputError:
            doc = None
        keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys) \
                or any("d" in k for k in keys):
            raise LookupError("the client's jwks_uri does not hold a public JWKS")
        return doc
