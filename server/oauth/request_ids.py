"""The identifiers of one CIBA request and the keys they are stored under.

Every new request's ids share one *stamp*: the creation time in ns as 16 hex digits. Each id
that grants something keeps at least 256 random bits after it:

- ``auth_req_id`` (CIBA §7.3: "MUST contain sufficient entropy (a minimum of 128 bits while 160
  bits is recommended)", characters from ``A-Z a-z 0-9 . - _`` only) and the approval link's
  token: ``<stamp>.<token_urlsafe(32)>``. Both are secrets, so the database keeps only their
  *key*: the same stamp followed by 48 hex digits (192 bits) of the whole id's SHA-256
  (``key``). A lookup finds the row by the key of the id presented, exactly as by a digest
  before: the index compares hashes, never the secret.
- ``device_request_id`` (what devices see; grants nothing without the device's signature):
  ``<stamp><token_urlsafe(24)>``, 192 random bits.
- the row's primary key: ``<stamp><16 random hex digits>`` (round 4; grants nothing).

Why the stamp: the three unique indexes (auth_req_id_hash, device_request_id,
approval_token_hash) then grow at their right edge, as the primary key's has since round 4. A
batch of rows dirties the last leaf page of each instead of a random page per row of ever
larger indexes; SQLite writes each dirty page whole into the WAL at commit, and the random
pages stop fitting its page cache as the table grows (docs/performance.md, "Round 6:
bc-authorize"). The stamp tells only when the request was made, which its holder knows.

Ids made before (43 URL-safe characters, no dot, stored as the 64-hex SHA-256) keep their
key: ``key`` hashes a value without the ``<stamp>.`` form as ``security.digest`` did, so
requests pending when a provider is upgraded are still found, exchanged and approved.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import NamedTuple

from ..security import digest, time_stamp

STAMP = 16  # hex digits of time.time_ns(): fixed width until the year 2554
KEY_HASH = 48  # hex digits of SHA-256 after the stamp in a key: 192 bits, a key of 64 chars


class Companions(NamedTuple):
    """The other ids of a request, stamped as its auth_req_id."""

    row_id: str
    device_request_id: str
    approval_token: str


def new_auth_req_id() -> str:
    """A fresh auth_req_id: ``<stamp>.<256 random bits>``."""
    return f"{time_stamp()}.{secrets.token_urlsafe(32)}"


def companions(auth_req_id: str) -> Companions:
    """The request's other ids, with its auth_req_id's stamp (a fresh one if it has none)."""
    stamp = auth_req_id[:STAMP] if _stamped(auth_req_id) else time_stamp()
    return Companions(row_id=stamp + secrets.token_hex(8),
                      device_request_id=stamp + secrets.token_urlsafe(24),
                      approval_token=f"{stamp}.{secrets.token_urlsafe(32)}")


def key(secret_id: str) -> str:
    """The stored lookup key of an auth_req_id or an approval token: ``<stamp>`` and 192 bits
    of its SHA-256 for a stamped id; the full SHA-256 (as ``security.digest``) for an id made
    before stamps, which has no dot."""
    if _stamped(secret_id):
        return secret_id[:STAMP] + hashlib.sha256(secret_id.encode()).hexdigest()[:KEY_HASH]
    return digest(secret_id)


def _stamped(secret_id: str) -> bool:
    return len(secret_id) > STAMP and secret_id[STAMP] == "."
