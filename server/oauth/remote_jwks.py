"""Client keys published at a ``jwks_uri`` (RFC 7591 §2), fetched over https and cached.

A private_key_jwt client may publish its keys instead of registering them (so it can rotate
them without telling the provider). The document is fetched once per ``TTL`` seconds per URL,
at most ``MAX_BYTES`` long, with no redirects; a self-registered client's URL must pass the
SSRF rule of ``netguard`` at every fetch. Failures raise LookupError (the client then fails to
authenticate with invalid_client); nothing is fetched on the hot path while the cache is fresh.
"""

from __future__ import annotations

import json
import threading
import time

import requests
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from . import netguard

TTL = 300.0
TIMEOUT = 5.0
MAX_BYTES = 64 * 1024


class RemoteKeySets:
    def __init__(self, ttl: float = TTL) -> None:
        self._ttl = ttl
        self._cache: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()
        self._http = requests.Session()

    def get(self, url: str, guarded: bool) -> KeySet:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
        if cached and cached[0] > now:
            return cached[1]
        keys = self._fetch(url, guarded)
        with self._lock:
            self._cache[url] = (now + self._ttl, keys)
        return keys

    def forget(self, url: str) -> None:
        with self._lock:
            self._cache.pop(url, None)

    def _fetch(self, url: str, guarded: bool) -> KeySet:
        if guarded:
            reason = netguard.refuse_reason(url)
            if reason:
                raise LookupError(f"the client's jwks_uri {reason}")
        try:
            with self._http.get(url, timeout=TIMEOUT, allow_redirects=False, stream=True,
                                headers={"Accept": "application/json"}) as response:
                body = response.raw.read(MAX_BYTES + 1, decode_content=True)
                status = response.status_code
        except requests.RequestException as exc:
            raise LookupError(f"the client's jwks_uri could not be fetched "
                              f"({type(exc).__name__})") from None
        if status != 200 or len(body) > MAX_BYTES:
            raise LookupError(f"the client's jwks_uri answered HTTP {status}"
                              if status != 200 else "the client's JWKS is too large")
        try:
            document = json.loads(body)
            if any("d" in key for key in document["keys"]):
                raise ValueError("private key")
            return KeySet.import_key_set(document)
        except (ValueError, TypeError, KeyError, LookupError, JoseError):
            raise LookupError("the client's jwks_uri does not hold a public JWKS") from None


#: One cache per process, shared by every client.
REMOTE = RemoteKeySets()
