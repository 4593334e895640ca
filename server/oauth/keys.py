"""The provider's signing keys: generated on first start, persisted, published as a JWKS, rotated.

Rotation publishes the new keys at once but signs with them only after ``publish_ahead``
seconds, so that clients caching the JWKS see a new kid before any token carries it. Retired
keys stay published for verification (``keys rotate`` never deletes; ``keys retire`` does).
"""

from __future__ import annotations

import json
import threading
import time
import uuid

from joserfc.jwk import ECKey, KeySet, RSAKey

from ..clock import Clock
from ..storage import Database, keys as key_repo
from ..storage.models import SigningKey

#: Which key family signs each JWS algorithm we support.
ALG_KTY = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
SUPPORTED_ALGS = tuple(ALG_KTY)


class KeyRing:
    """Reads keys from storage, caching them briefly so every process sees a rotation soon."""

    def __init__(self, db: Database, clock: Clock, cache_seconds: float = 30.0,
                 publish_ahead: float = 0.0) -> None:
        self.db, self.clock = db, clock
        self.cache_seconds = cache_seconds
        self.publish_ahead = publish_ahead
        self._lock = threading.Lock()
        self._loaded_at = -1.0
        self._rows: list[SigningKey] = []
        self._private: dict[str, RSAKey | ECKey] = {}

    def ensure(self) -> None:
        """Create an RSA and an EC key when none exist (first start)."""
        with self.db.session() as s:
            if not key_repo.published(s):
                now = self.clock.now()
                for kty in ("RSA", "EC"):
                    key_repo.add(s, _generate(kty, now, active_from=now))
        self._invalidate()

    def rotate(self, publish_ahead: float | None = None) -> list[str]:
        """Add a new RSA and EC key; they sign from now + publish_ahead. Returns the new kids."""
        ahead = self.publish_ahead if publish_ahead is None else publish_ahead
        now = self.clock.now()
        with self.db.session() as s:
            rows = [_generate(kty, now, active_from=now + ahead) for kty in ("RSA", "EC")]
            for row in rows:
                key_repo.add(s, row)
        self._invalidate()
        return [r.kid for r in rows]

    def retire(self, kid: str) -> None:
        with self.db.session() as s:
            key_repo.retire(s, kid, self.clock.now())
        self._invalidate()

    def _invalidate(self) -> None:
        # Under the lock, so a load that read the old rows cannot mark them fresh afterwards.
        with self._lock:
            self._loaded_at = -1.0

    def _load(self) -> list[SigningKey]:
        now = time.monotonic()
        with self._lock:
            if self._loaded_at < 0 or now - self._loaded_at > self.cache_seconds:
                with self.db.session() as s:
                    self._rows = key_repo.published(s)
                self._loaded_at = now
            return self._rows

    def jwks(self) -> dict:
        """The public JWKS document (RFC 7517 §5)."""
        return {"keys": [json.loads(row.public_jwk) for row in self._load()]}

    def public_keyset(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())

    def signing_key(self, alg: str) -> RSAKey | ECKey:
        """The newest active key of the family that ``alg`` needs."""
        kty = ALG_KTY[alg]
        now = self.clock.now()
        for row in self._load():
            if row.alg == kty and row.active_from <= now:
                key = self._private.get(row.kid)
                if key is None:
                    key = _import(row.private_jwk)
                    self._private[row.kid] = key
                return key
        raise LookupError(f"no active {kty} signing key")


def _generate(kty: str, now: float, active_from: float) -> SigningKey:
    kid = uuid.uuid4().hex[:16]
    params = {"kid": kid, "use": "sig"}
    key = RSAKey.generate_key(2048, parameters=params) if kty == "RSA" else \
        ECKey.generate_key("P-256", parameters=params)
    return SigningKey(kid=kid, alg=kty, private_jwk=json.dumps(key.as_dict(private=True)),
                      public_jwk=json.dumps(key.as_dict(private=False)), created_at=now,
                      active_from=active_from)


def _import(private_jwk: str) -> RSAKey | ECKey:
    data = json.loads(private_jwk)
    return RSAKey.import_key(data) if data["kty"] == "RSA" else ECKey.import_key(data)
