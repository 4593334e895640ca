"""Secrets handling shared by every part: random ids, hashing, constant-time checks, encryption.

Ids that grant something use 256 random bits (the guide asks for at least 160). Secrets are
stored as SHA-256 digests when only equality is needed (ids with full entropy), or as argon2id
hashes (RFC 9106; passwords and client secrets) in the PHC string format, which carries its own
parameters: raising ``ARGON2`` below makes ``verify_password`` return a new hash for the caller
to store at the next successful sign-in. Hashes made before argon2id (``scrypt$salt$key``,
N=2^14, r=8, p=1) still verify, and are replaced the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time

from argon2 import PasswordHasher, Type, exceptions as argon2_errors
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def new_id(nbytes: int = 32) -> str:
    """An unguessable URL-safe identifier (default 256 bits).

    Never starts with "-": such an id, typed after a command (``devices revoke ID``), would be
    taken for an option. Redrawing the first character keeps it uniform over 63 values.
    """
    while True:
        value = secrets.token_urlsafe(nbytes)
        if not value.startswith("-"):
            return value


def time_stamp() -> str:
    """The time in ns as 16 hex digits (fixed width until the year 2554). Ids that start with
    it sort in creation order, so their unique indexes grow at the right edge: an INSERT then
    dirties the last leaf page, shared by its batch, instead of a random page that SQLite
    writes whole into its log (docs/performance.md, rounds 4 and 6). It tells only when the
    row was made."""
    return f"{time.time_ns():016x}"


def digest(value: str) -> str:
    """Lookup key for a high-entropy secret; safe to store, useless to an attacker."""
    return hashlib.sha256(value.encode()).hexdigest()


#: argon2id parameters for new hashes: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
ARGON2 = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1, "hash_len": 32,
          "salt_len": 16}
_HASHER = PasswordHasher(type=Type.ID, **ARGON2)
#: Verified when there is no stored hash (unknown user), so that timing tells nothing.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id PHC string: ``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>``."""
    return _HASHER.hash(password)


def verify_password(password: str, stored: str | None) -> tuple[bool, str | None]:
    """(matches, new hash to store or None). A new hash comes with a match when ``stored`` is
    an old scrypt hash or argon2id with other parameters than ``ARGON2``. The hashing work is
    done even without a stored hash."""
    stored = stored or ""
    if stored.startswith("scrypt$"):
        ok = _check_scrypt(password, stored)
        return ok, (hash_password(password) if ok else None)
    try:
        ok = _HASHER.verify(stored if stored.startswith("$argon2") else _DUMMY, password) \
            and stored.startswith("$argon2")
    except (argon2_errors.VerificationError, argon2_errors.InvalidHashError):
        return False, None
    return ok, (hash_password(password) if ok and _HASHER.check_needs_rehash(stored) else None)


def check_password(password: str, stored: str | None) -> bool:
    return verify_password(password, stored)[0]


def _check_scrypt(password: str, stored: str) -> bool:
    """The scheme used before argon2id: ``scrypt$<salt>$<key>``, N=2^14, r=8, p=1."""
    try:
        _, salt_b64, dk_b64 = stored.split("$")
        salt, expected = _unb64(salt_b64), _unb64(dk_b64)
    except ValueError:
        return False
    dk = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(dk, expected)


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class SecretBox:
    """AES-256-GCM encryption for the few secrets the provider must read back."""

    def __init__(self, key_material: str) -> None:
        self._aead = AESGCM(hashlib.sha256(b"ciba-secretbox:" + key_material.encode()).digest())

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        return _b64(nonce + self._aead.encrypt(nonce, plaintext.encode(), None))

    def open(self, sealed: str) -> str:
        raw = _unb64(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
