"""The audit log: who did what security-relevant thing, when, and from which address.

Events are written in the same transaction as the change they record where there is one
(``entry`` + the caller's session), so a change and its record commit or roll back together;
``record`` writes one on its own (a failed sign-in changes nothing else). The client address
comes from the HTTP request being served (``bind_address``, set by the web layer after
CIBA_TRUSTED_PROXIES is applied), so that core code needs no Flask.

Never a secret: ``detail`` drops every key that names one (secret, password, token, code,
auth_req_id, ...) whatever the caller passed, and callers pass only ids, names and settings.
"""

from __future__ import annotations

import getpass
import json
import logging
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .storage import audit as audit_repo
from .storage.models import AuditEvent

if TYPE_CHECKING:
    from .ports import ProviderCore

log = logging.getLogger(__name__)

#: Every event name, with the words the operator page shows for it.
EVENTS = {
    "sign_in": "Signed in",
    "sign_in_failed": "Sign-in failed",
    "sign_in_locked": "Sign-in locked out",
    "sign_out": "Signed out",
    "passkey_added": "Passkey added",
    "passkey_removed": "Passkey removed",
    "device_enrolled": "Device enrolled",
    "device_revoked": "Device revoked",
    "request_approved": "Request approved",
    "request_denied": "Request denied",
    "request_cancelled": "Request cancelled",
    "request_reported": "Reported: “I didn't request this”",
    "token_issued": "Tokens issued",
    "token_refreshed": "Tokens refreshed",
    "client_created": "Client created",
    "client_updated": "Client changed",
    "client_secret_rotated": "Client secret rotated",
    "client_removed": "Client removed",
    "user_created": "User created",
    "user_updated": "User changed",
    "user_password_reset": "Password reset",
    "registration_token_created": "Registration token created",
    "registration_token_revoked": "Registration token revoked",
    "keys_rotated": "Signing keys rotated",
}

#: Detail keys never stored, whatever a caller passes: these names, and names ending so.
_SECRET_KEYS = {"code", "user_code", "auth_req_id", "jws", "private_jwk", "credential"}
_SECRET_ENDINGS = ("secret", "password", "token", "_hash", "_sealed", "_encrypted",
                   "assertion", "challenge")

_address: ContextVar[str | None] = ContextVar("ciba_audit_address", default=None)


def bind_address(address: str | None) -> None:
    """The client address of the request being served (called once per request)."""
    _address.set(address)


def bound_address() -> str | None:
    """The address ``bind_address`` set for the request being served (taken along by work that
    another caller's greenlet runs: a group commit's units)."""
    return _address.get()


def cli_actor() -> str:
    """The actor of an operator command run from a terminal: ``cli:<login name>``."""
    try:
        return "cli:" + getpass.getuser()
    except Exception:
        return "cli"


def clean(detail: dict[str, Any]) -> dict[str, Any]:
    """``detail`` without keys that name secrets, recursively (before/after dicts too)."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        name = key.lower()
        if name in _SECRET_KEYS or name.endswith(_SECRET_ENDINGS):
            continue
        out[key] = clean(value) if isinstance(value, dict) else value
    return out


def entry(event: str, actor: str, now: float, *, user_id: str | None = None,
          client_id: str | None = None, **detail: Any) -> AuditEvent:
    """A row to add to the caller's session (one small INSERT at its commit)."""
    return AuditEvent(**values(event, actor, now, user_id=user_id, client_id=client_id,
                               **detail))


def values(event: str, actor: str, now: float, *, user_id: str | None = None,
           client_id: str | None = None, **detail: Any) -> dict[str, Any]:
    """The columns of an ``entry`` (all but its id), for a prepared INSERT in the caller's
    transaction (storage.audit.INSERT: the decision and token hot paths)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    return {"at": now, "event": event, "actor": actor[:300], "address": _address.get(),
            "user_id": user_id, "client_id": client_id,
            "detail": json.dumps(clean(detail), separators=(",", ":"), default=str)}


def record(p: "ProviderCore", event: str, actor: str, *, user_id: str | None = None,
           client_id: str | None = None, **detail: Any) -> None:
    """Write one event in its own transaction; a failure is logged, never raised."""
    try:
        with p.db.session() as s:
            audit_repo.add(s, entry(event, actor, p.clock.now(), user_id=user_id,
                                    client_id=client_id, **detail))
    except Exception:
        log.exception("could not write the audit event %s", event)


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{field: [old, new]} for the fields that differ (secrets are dropped by ``clean``)."""
    keys = sorted(set(before) | set(after))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}


def as_dict(row: AuditEvent, username: str | None = None) -> dict[str, Any]:
    """One exported line (``ciba-provider audit export``) and what the page shows."""
    return {"id": row.id,
            "at": datetime.fromtimestamp(row.at, timezone.utc).isoformat(timespec="seconds"),
            "event": row.event, "actor": row.actor, "address": row.address,
            "user_id": row.user_id, "username": username, "client_id": row.client_id,
            "detail": json.loads(row.detail or "{}")}
