"""The local store of enrolled accounts: one JSON file in the app's data directory.

An account is one enrollment: a provider (base URL and issuer), a user there, the device_id the
provider gave this device, the TOTP parameters and the push channel. Several accounts (providers
or users) can live side by side. The file holds the TOTP secret, so it is written 0600 in a
0700 directory, like the keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .keys import KeyStore, private_dir, write_private_file

STORE_NAME = "accounts.json"
COLOURS = 6  # the number of account colours the UI has (ui/theme.py ACCOUNT_COLOURS)
log = logging.getLogger(__name__)


@dataclass
class Account:
    device_id: str
    base_url: str  # where to reach the provider (everything before /device/...)
    issuer: str  # the provider's issuer: the "aud" of every JWS this device signs
    username: str
    name: str = ""
    display_name: str = ""
    totp: dict[str, Any] = field(default_factory=dict)
    channel: dict[str, Any] = field(default_factory=dict)
    enrolled_at: int = 0
    colour: int = -1  # its chip's colour, chosen at enrollment so that accounts differ

    @property
    def provider_label(self) -> str:
        """The provider as a person reads it: its host (and port)."""
        return urlsplit(self.issuer or self.base_url).netloc or self.issuer

    @property
    def label(self) -> str:
        return f"{self.name or self.username} @ {self.provider_label}"

    @property
    def colour_index(self) -> int:
        """A stable small number per account, so its chip keeps one colour on every screen."""
        if self.colour >= 0:
            return self.colour
        return int(hashlib.sha256(self.device_id.encode()).hexdigest()[:8], 16)

    @property
    def push(self) -> str:
        return str(self.channel.get("type") or "websocket")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Account":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_enrollment(cls, base_url: str, body: dict[str, Any], display_name: str) -> "Account":
        """An account from the provider's 201 answer to POST /device/enroll."""
        user = body.get("user") or {}
        return cls(
            device_id=str(body["device_id"]),
            base_url=base_url.rstrip("/"),
            issuer=str(body.get("issuer") or base_url).rstrip("/"),
            username=str(user.get("username", "")),
            name=str(user.get("name") or ""),
            display_name=display_name,
            totp=dict(body.get("totp") or {}),
            channel=dict(body.get("channel") or {}),
            enrolled_at=int(time.time()),
        )


class AccountStore:
    """Accounts persisted in ``<data_dir>/accounts.json``, keys in ``<data_dir>/keys``."""

    def __init__(self, data_dir: Path | str, lock=None) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / STORE_NAME
        self.keys = KeyStore(self.data_dir, lock)
        self._lock = threading.Lock()
        self._cache: list[Account] | None = None  # only this process writes the file

    def accounts(self) -> list[Account]:
        with self._lock:
            if self._cache is None:
                self._cache = self._read()
            return list(self._cache)

    def get(self, device_id: str) -> Account | None:
        return next((a for a in self.accounts() if a.device_id == device_id), None)

    def add(self, account: Account) -> None:
        with self._lock:
            accounts = [a for a in self._read() if a.device_id != account.device_id]
            if account.colour < 0:  # the first colour no other account has
                taken = {a.colour_index % COLOURS for a in accounts}
                account.colour = next((c for c in range(COLOURS) if c not in taken), len(accounts))
            accounts.append(account)
            self._write(accounts)

    def remove(self, device_id: str) -> None:
        """Forget an account and delete its private key."""
        with self._lock:
            self._write([a for a in self._read() if a.device_id != device_id])
        self.keys.delete(device_id)

    def _read(self) -> list[Account]:
        try:
            raw = json.loads(self.path.read_text())
            return [Account.from_dict(item) for item in raw.get("accounts", [])]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError, KeyError, AttributeError):
            # unreadable: keep it aside for inspection and start empty rather than not start
            aside = self.path.with_name(f"{STORE_NAME}.unreadable-{int(time.time())}")
            os.replace(self.path, aside)
            log.warning("The account store was unreadable; moved to %s", aside.name)
            return []

    def _write(self, accounts: list[Account]) -> None:
        self._cache = list(accounts)
        private_dir(self.data_dir)
        data = {"version": 1, "accounts": [asdict(a) for a in accounts]}
        write_private_file(self.path, json.dumps(data, indent=2).encode())
