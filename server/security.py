"""Secrets handling shared by every part: random ids, hashing, constant-time checks, encryption.

Ids that grant something use 256 random bits (the guide asks for at least 160). Secrets are
stored as SHA-256 digests when only equality is needed (ids with full entropy), or as scrypt
hashes (passwords, client secrets chosen by people).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

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


def digest(value: str) -> str:
    """Lookup key for a high-entropy secret; safe to store, useless to an attacker."""
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + _b64(salt) + "$" + _b64(dk)


def check_password(password: str, stored: str | None) -> bool:
    """Constant-time verification; always does the scrypt work so timing tells nothing."""
    try:
        scheme, salt_b64, dk_b64 = (stored or "").split("$")
        salt, expected = _unb64(salt_b64), _unb64(dk_b64)
    except ValueError:
        scheme, salt, expected = "", b"\0" * 16, b""
    dk = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return scheme == "scrypt" and hmac.compare_digest(dk, expected)


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
