"""A client's public keys: its registered ``jwks``, or the document at its ``jwks_uri``
(RFC 7591 §2), fetched and cached so that a key rotation on the client's side is picked up.

A fetch happens at most every ``min_refresh`` seconds per URI, and again when a signature
names a kid the cached set lacks; a fetch that fails keeps serving the cached set.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import requests

log = logging.getLogger(__name__)

MAX_BYTES = 256 * 1024


class JwksCache:
    def __init__(self, ttl: float = 300.0, min_refresh: float = 10.0, timeout: float = 5.0) -> None:
        self.ttl, self.min_refresh, self.timeout = ttl, min_refresh, timeout
        self._docs: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()
        self.http = requests.Session()

    def get(self, uri: str, refresh: bool = False) -> dict:
        now = time.monotonic()
        with self._lock:
            cached = self._docs.get(uri)
        if cached and (now - cached[0] < self.ttl) and not (refresh and now - cached[0] >= self.min_refresh):
            return cached[1]
        try:
            response = self.http.get(uri, timeout=self.timeout, allow_redirects=False, stream=True)
            raw = response.raw.read(MAX_BYTES + 1, decode_content=True)
            if response.status_code != 200 or len(raw) > MAX_BYTES:
                raise ValueError(f"HTTP {response.status_code}")
            doc = json.loads(raw)
            if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
                raise ValueError("not a JWKS")
        except (requests.RequestException, ValueError) as exc:
            log.warning("cannot fetch the client JWKS at %s: %s", uri, exc)
            return cached[1] if cached else {"keys": []}
        with self._lock:
            self._docs[uri] = (now, doc)
        return doc
