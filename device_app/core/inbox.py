"""The inbox: pending login requests (newest first) and the history of what became of them.

A request arrives from the WebSocket, a Gotify nudge or a fetch of /device/requests; it leaves
Home when this device decides it, when another device of the user decides it
(``request_resolved``), when it expires, or when a fetch no longer lists it. Each departure
that has a known outcome goes to the history as approved, denied, expired or failed (+ reason).

Not thread-safe by design: the app touches it from the UI thread only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("approved", "denied", "cancelled", "expired", "failed")
HISTORY_LIMIT = 200


@dataclass
class PendingRequest:
    account_id: str
    request: dict[str, Any]
    received_at: float = field(default_factory=time.time)
    busy: bool = False  # a decision is on its way to the provider

    @property
    def request_id(self) -> str:
        return str(self.request["request_id"])

    @property
    def client_name(self) -> str:
        return str(self.request.get("client_name") or "An application")

    @property
    def binding_message(self) -> str | None:
        value = self.request.get("binding_message")
        return None if value is None else str(value)

    @property
    def created_at(self) -> float:
        return float(self.request.get("created_at") or self.received_at)

    @property
    def expires_at(self) -> float | None:
        value = self.request.get("expires_at")
        return float(value) if value else None

    def seconds_left(self, now: float | None = None) -> int | None:
        if self.expires_at is None:
            return None
        return max(0, int(self.expires_at - (time.time() if now is None else now)))


@dataclass
class HistoryEntry:
    account_id: str
    request: dict[str, Any]
    outcome: str
    reason: str = ""
    at: float = field(default_factory=time.time)

    @property
    def request_id(self) -> str:
        return str(self.request["request_id"])


class Inbox:
    def __init__(self) -> None:
        self._pending: dict[str, PendingRequest] = {}
        self._history: list[HistoryEntry] = []

    def pending(self) -> list[PendingRequest]:
        """Pending requests, newest first."""
        return sorted(self._pending.values(), key=lambda p: (p.created_at, p.received_at), reverse=True)

    def history(self) -> list[HistoryEntry]:
        """What became of past requests, newest first."""
        return list(reversed(self._history))

    def get(self, request_id: str) -> PendingRequest | None:
        return self._pending.get(request_id)

    def add(self, account_id: str, request: dict[str, Any], now: float | None = None) -> bool:
        """Add a pending request; False when it is known, no longer pending, or expired."""
        now = time.time() if now is None else now
        request_id = request.get("request_id")
        if not request_id or request_id in self._pending:
            return False
        if request.get("status", "pending") != "pending":
            return False
        if any(h.request_id == request_id for h in self._history):
            return False
        item = PendingRequest(account_id, dict(request), received_at=now)
        if item.expires_at is not None and item.expires_at <= now:
            return False
        self._pending[str(request_id)] = item
        return True

    def sync(self, account_id: str, requests: list[dict[str, Any]], now: float | None = None) -> bool:
        """Make the account's pending list match the provider's; True if anything changed."""
        now = time.time() if now is None else now
        listed = {str(r.get("request_id")) for r in requests}
        changed = False
        for item in [p for p in self._pending.values() if p.account_id == account_id]:
            if item.request_id not in listed and not item.busy:
                del self._pending[item.request_id]
                if item.expires_at is not None and item.expires_at <= now:
                    self._record(item, "expired", "", now)
                changed = True
        for request in requests:
            changed = self.add(account_id, request, now) or changed
        return changed

    def set_busy(self, request_id: str, busy: bool = True) -> None:
        if request_id in self._pending:
            self._pending[request_id].busy = busy

    def resolve(self, request_id: str, outcome: str, reason: str = "", now: float | None = None) -> bool:
        """Move a pending request to the history with its outcome; False if not pending here."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        item = self._pending.pop(request_id, None)
        if item is None:
            return False
        self._record(item, outcome, reason, time.time() if now is None else now)
        return True

    def expire(self, now: float | None = None) -> list[str]:
        """Move every request whose expires_at has passed to the history; their ids."""
        now = time.time() if now is None else now
        gone = [p.request_id for p in self._pending.values()
                if p.expires_at is not None and p.expires_at <= now and not p.busy]
        for request_id in gone:
            self.resolve(request_id, "expired", "", now)
        return gone

    def remove_account(self, account_id: str) -> None:
        self._pending = {k: v for k, v in self._pending.items() if v.account_id != account_id}

    def _record(self, item: PendingRequest, outcome: str, reason: str, now: float) -> None:
        self._history.append(HistoryEntry(item.account_id, item.request, outcome, reason, now))
        del self._history[:-HISTORY_LIMIT]
