"""The device's P-256 key pairs (docs/device-protocol.md §2): made on the device, kept there.

Each enrolled account has its own key. Private keys are PEM files in ``<data dir>/keys`` with
owner-only permissions (directory 0700, file 0600); only the public JWK is ever sent.
"""

from __future__ import annotations

import os
from pathlib import Path

from joserfc.jwk import ECKey

KEY_DIR_NAME = "keys"


def generate_key() -> ECKey:
    """A fresh P-256 private key (never leaves this device)."""
    return ECKey.generate_key("P-256", private=True)


def public_jwk(key: ECKey) -> dict[str, str]:
    """The public half as a JWK: kty, crv, x, y and nothing private."""
    jwk = key.as_dict(private=False)
    return {name: jwk[name] for name in ("kty", "crv", "x", "y")}


def private_dir(path: Path) -> Path:
    """Create ``path`` if needed and make sure only the owner can enter it (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable and writable by the owner only (0600)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class KeyStore:
    """Private keys on disk, one file per device_id: ``<id>.pem`` (0600), or ``<id>.pem.enc``
    encrypted under the app lock's data key when a PIN is set (core/lock.py)."""

    def __init__(self, data_dir: Path, lock=None) -> None:
        self.dir = Path(data_dir) / KEY_DIR_NAME
        self.lock = lock  # an AppLock, or None (tests, tools)

    def plain_files(self) -> list[Path]:
        return sorted(self.dir.glob("*.pem")) if self.dir.is_dir() else []

    def encrypted_files(self) -> list[Path]:
        return sorted(self.dir.glob("*.pem.enc")) if self.dir.is_dir() else []

    def _path(self, device_id: str) -> Path:
        if not device_id or "/" in device_id or device_id.startswith("."):
            raise ValueError("unusable device_id")
        return self.dir / f"{device_id}.pem"

    def save(self, device_id: str, key: ECKey) -> Path:
        private_dir(self.dir.parent)
        private_dir(self.dir)
        path = self._path(device_id)
        pem = key.as_pem(private=True)
        if self.lock is not None and self.lock.enabled:
            path = path.with_name(path.name + ".enc")
            write_private_file(path, self.lock.encrypt(device_id, pem))
        else:
            write_private_file(path, pem)
        return path

    def load(self, device_id: str) -> ECKey:
        path = self._path(device_id)
        sealed = path.with_name(path.name + ".enc")
        if sealed.exists() and self.lock is not None:
            return ECKey.import_key(self.lock.decrypt(device_id, sealed.read_bytes()))
        return ECKey.import_key(path.read_bytes())

    def delete(self, device_id: str) -> None:
        path = self._path(device_id)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".enc").unlink(missing_ok=True)
