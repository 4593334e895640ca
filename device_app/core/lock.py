"""The app lock: an optional PIN that encrypts the device's private keys at rest.

Without a PIN the keys are PEM files only the owner can read (0600 in a 0700 folder). With one,
a random 256-bit data key encrypts each private key (AES-256-GCM, the device_id as associated
data, ``keys/<device_id>.pem.enc``); the data key itself is stored wrapped under a key derived
from the PIN with scrypt (RFC 7914; N=2^15, r=8, p=1: 32 MiB and a noticeable fraction of a
second per guess). Changing the PIN re-wraps the data key only.

Wrong PINs slow down: after ``FREE_TRIES`` failures each further one makes the next attempt
wait ``BASE_DELAY`` doubling up to ``MAX_DELAY``; the count and the time are kept in
``lock.json``, so restarting the app does not reset them. (Someone who can copy the files can
guess offline at scrypt's pace; a short PIN is a lock on the door, not a vault. Android's
Keystore is the stronger home for these keys once the app runs there.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .keys import private_dir, write_private_file

LOCK_FILE = "lock.json"
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}
FREE_TRIES = 3
BASE_DELAY = 30.0
MAX_DELAY = 3600.0
MIN_PIN, MAX_PIN = 4, 12
WRAP_AAD = b"ciba-device app lock v1"
UNLOCK_WINDOW = 300  # seconds an Accept needs no PIN after the last one was entered


class PinError(ValueError):
    """The PIN is wrong (``wait`` > 0: and the next try must wait that many seconds)."""

    def __init__(self, message: str, wait: float = 0.0) -> None:
        super().__init__(message)
        self.wait = wait


class Locked(RuntimeError):
    """The keys are encrypted and the PIN has not been entered since the app started."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def check_pin_format(pin: str) -> None:
    if not (pin.isdigit() and MIN_PIN <= len(pin) <= MAX_PIN):
        raise PinError(f"A PIN is {MIN_PIN} to {MAX_PIN} digits.")


def _derive(pin: str, salt: bytes, params: dict) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=params["n"], r=params["r"], p=params["p"],
                          maxmem=128 * params["r"] * params["n"] * 2, dklen=32)


class AppLock:
    def __init__(self, data_dir: Path | str, clock: Callable[[], float] = time.time,
                 scrypt: dict | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE
        self.clock = clock
        self.scrypt = scrypt or SCRYPT
        self._data_key: bytes | None = None
        self._last_pin_at: float | None = None

    # state ----------------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def _save(self, state: dict) -> None:
        private_dir(self.data_dir)
        write_private_file(self.path, json.dumps(state).encode())

    @property
    def enabled(self) -> bool:
        return bool(self._state().get("wrapped"))

    @property
    def unlocked(self) -> bool:
        return not self.enabled or self._data_key is not None

    def wait_seconds(self) -> float:
        """Seconds before the next PIN may be tried (0: now)."""
        return max(0.0, float(self._state().get("blocked_until") or 0) - self.clock())

    def recently_entered(self) -> bool:
        """The PIN was entered within UNLOCK_WINDOW: an Accept needs no PIN now."""
        return self._last_pin_at is not None and self.clock() - self._last_pin_at < UNLOCK_WINDOW

    # the PIN --------------------------------------------------------------------------------
    def unlock(self, pin: str) -> None:
        """Check the PIN and keep the data key in memory; PinError when wrong (or too soon)."""
        state = self._state()
        if not state.get("wrapped"):
            return
        wait = self.wait_seconds()
        if wait > 0:
            raise PinError(f"Too many wrong PINs. Try again in {int(wait) + 1} s.", wait)
        kek = _derive(pin, _unb64(state["salt"]), state.get("scrypt") or self.scrypt)
        try:
            data_key = AESGCM(kek).decrypt(_unb64(state["nonce"]), _unb64(state["wrapped"]),
                                           WRAP_AAD)
        except InvalidTag:
            failures = int(state.get("failures") or 0) + 1
            state["failures"] = failures
            delay = 0.0
            if failures >= FREE_TRIES:
                delay = min(MAX_DELAY, BASE_DELAY * 2 ** (failures - FREE_TRIES))
                state["blocked_until"] = self.clock() + delay
            self._save(state)
            raise PinError("Wrong PIN." + (f" Try again in {int(delay)} s." if delay else ""),
                           delay) from None
        if state.get("failures") or state.get("blocked_until"):
            state.pop("failures", None)
            state.pop("blocked_until", None)
            self._save(state)
        self._data_key = data_key
        self._last_pin_at = self.clock()

    def set_pin(self, new_pin: str, key_files: list[Path], current_pin: str | None = None) -> None:
        """Turn the lock on (encrypting ``key_files``), or change the PIN."""
        check_pin_format(new_pin)
        if self.enabled:
            self.unlock(current_pin or "")
            data_key = self._data_key
        else:
            data_key = AESGCM.generate_key(256)
        assert data_key is not None
        salt, nonce = os.urandom(16), os.urandom(12)
        kek = _derive(new_pin, salt, self.scrypt)
        wrapped = AESGCM(kek).encrypt(nonce, data_key, WRAP_AAD)
        first = not self.enabled
        self._data_key = data_key
        if first:  # encrypt the existing keys, then forget the plain files
            for plain in key_files:
                device_id = plain.name[: -len(".pem")]
                write_private_file(plain.with_name(plain.name + ".enc"),
                                   self.encrypt(device_id, plain.read_bytes()))
        self._save({"version": 1, "kdf": "scrypt", "scrypt": self.scrypt, "salt": _b64(salt),
                    "nonce": _b64(nonce), "wrapped": _b64(wrapped)})
        if first:
            for plain in key_files:
                _erase(plain)
        self._last_pin_at = self.clock()

    def remove_pin(self, pin: str, encrypted_files: list[Path]) -> None:
        """Turn the lock off: the keys become 0600 PEM files again."""
        self.unlock(pin)
        for sealed in encrypted_files:
            device_id = sealed.name[: -len(".pem.enc")]
            write_private_file(sealed.with_name(device_id + ".pem"),
                               self.decrypt(device_id, sealed.read_bytes()))
        self.path.unlink(missing_ok=True)
        for sealed in encrypted_files:
            sealed.unlink(missing_ok=True)
        self._data_key = None

    def forget(self) -> None:
        """"Forgot PIN": the lock file goes (the caller deletes the encrypted keys)."""
        self.path.unlink(missing_ok=True)
        self._data_key = None

    # keys -----------------------------------------------------------------------------------
    def encrypt(self, device_id: str, data: bytes) -> bytes:
        if self._data_key is None:
            raise Locked("enter the PIN first")
        nonce = os.urandom(12)
        return nonce + AESGCM(self._data_key).encrypt(nonce, data, device_id.encode())

    def decrypt(self, device_id: str, blob: bytes) -> bytes:
        if self._data_key is None:
            raise Locked("enter the PIN first")
        return AESGCM(self._data_key).decrypt(blob[:12], blob[12:], device_id.encode())


def _erase(path: Path) -> None:
    """Overwrite, then delete (best effort: flash storage may keep old blocks)."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.write(os.urandom(size))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        pass
    path.unlink(missing_ok=True)
