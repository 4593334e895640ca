"""The inbox: pending login requests (newest first) and the history of what became of them.

A request arrives from the WebSocket, a Gotify nudge or a fetch of /device/requests; it leaves
Home when this device decides it, when another device of the user decides it
(``request_resolved``), when it expires, or when a fetch no longer lists it. Each departure
that has a known outcome goes to the history as approved, denied, cancelled, expired or failed
(+ reason). A decision that could not be sent is noted in the history at once (``final`` False)
and replaced by the real outcome later, so it is never lost even if the request then vanishes.

``dump()``/``load()`` keep pending requests and history across restarts (the service writes
them to ``inbox.json``). Not thread-safe by design: the app touches it from the UI thread only.
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
    final: bool = True  # False: a note (the answer was not sent); the request may still be pending
    reported: bool = False  # "I didn't request this" was sent for it

    @property
    def request_id(self) -> str:
        return str(self.request["request_id"])


class Inbox:
    def __init__(self) -> None:
        self._pending: dict[str, PendingRequest] = {}
        self._dropped: dict[str, PendingRequest] = {}
        self._history: list[HistoryEntry] = []

    def pending(self) -> list[PendingRequest]:
        """Pending requests, newest first."""
        return sorted(self._pending.values(), key=lambda p: (p.created_at, p.received_at), reverse=True)

    def history(self) -> list[HistoryEntry]:
        """What became of past requests, newest first (an unsent note last replaced)."""
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
        if any(h.request_id == request_id and h.final for h in self._history):
            return False
        item = PendingRequest(account_id, dict(request), received_at=now)
        if item.expires_at is not None and item.expires_at <= now:
            return False
        self._pending[str(request_id)] = item
        return True

    def sync(self, account_id: str, requests: list[dict[str, Any]], now: float | None = None) -> bool:
        """Make the account's pending list match the provider's; True if anything changed.

        A request no longer listed that has not expired was decided or cancelled elsewhere:
        it is kept out of Home and listed by ``dropped()`` so its outcome can be asked for.
        """
        now = time.time() if now is None else now
        listed = {str(r.get("request_id")) for r in requests}
        changed = False
        for item in [p for p in self._pending.values() if p.account_id == account_id]:
            if item.request_id not in listed and not item.busy:
                del self._pending[item.request_id]
                if item.expires_at is not None and item.expires_at <= now:
                    self._record(item, "expired", "", now)
                else:
                    self._dropped[item.request_id] = item
                changed = True
        for request in requests:
            changed = self.add(account_id, request, now) or changed
        return changed

    def dropped(self) -> list[PendingRequest]:
        """Requests that left without an outcome; ``settle`` records one for each."""
        return list(self._dropped.values())

    def settle(self, request_id: str, outcome: str, reason: str = "", now: float | None = None) -> bool:
        """Record the outcome of a dropped request (learnt from the provider)."""
        item = self._dropped.pop(request_id, None)
        if item is None or outcome not in OUTCOMES:
            return False
        self._record(item, outcome, reason, time.time() if now is None else now)
        return True

    def note_unsent(self, request_id: str, reason: str, now: float | None = None) -> None:
        """The answer could not be sent: say so in the history now; the request stays pending."""
        item = self._pending.get(request_id)
        if item is not None:
            self._record(item, "failed", reason, time.time() if now is None else now, final=False)

    def entry(self, request_id: str) -> HistoryEntry | None:
        return next((h for h in self._history if h.request_id == request_id), None)

    def approval_withdrawn(self, request_id: str, reason: str, now: float | None = None) -> bool:
        """The client cancelled a request this user approved, before using it: the history says
        cancelled (nothing was shared). False unless the entry is an approval."""
        entry = self.entry(request_id)
        if entry is None or entry.outcome != "approved":
            return False
        entry.outcome, entry.reason = "cancelled", reason
        entry.at = time.time() if now is None else now
        return True

    def mark_reported(self, request_id: str) -> None:
        entry = self.entry(request_id)
        if entry is not None:
            entry.reported = True

    # persistence ---------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """A snapshot for ``load``: new lists and dicts around the request dicts, which are never
        changed once received, so it may be serialised on another thread. (Cheap on purpose: no
        deep copy; it is taken on the UI thread.)"""
        fields = tuple(HistoryEntry.__dataclass_fields__)
        return {"version": 1,
                "pending": [{"account_id": p.account_id, "request": p.request,
                             "received_at": p.received_at} for p in self._pending.values()],
                "dropped": [{"account_id": p.account_id, "request": p.request,
                             "received_at": p.received_at} for p in self._dropped.values()],
                "history": [{name: getattr(h, name) for name in fields} for h in self._history]}

    def load(self, data: dict[str, Any]) -> None:
        """Restore what ``dump`` wrote (unknown fields are ignored, broken entries skipped)."""
        known = set(HistoryEntry.__dataclass_fields__)
        for entry in data.get("history") or []:
            try:
                h = HistoryEntry(**{k: v for k, v in entry.items() if k in known})
                if h.outcome in OUTCOMES and h.request_id:
                    self._history.append(h)
            except (TypeError, KeyError, AttributeError):
                continue
        for bucket, target in (("pending", self._pending), ("dropped", self._dropped)):
            for item in data.get(bucket) or []:
                try:
                    p = PendingRequest(str(item["account_id"]), dict(item["request"]),
                                       float(item.get("received_at") or time.time()))
                    target[p.request_id] = p
                except (TypeError, KeyError, ValueError, AttributeError):
                    continue
        del self._history[:-HISTORY_LIMIT]

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
        self._dropped = {k: v for k, v in self._dropped.items() if v.account_id != account_id}

    def _record(self, item: PendingRequest, outcome: str, reason: str, now: float,
                final: bool = True) -> None:
        previous = self.entry(item.request_id)
        if previous is not None:  # an unsent note is replaced by what happened after
            self._history.remove(previous)
        self._history.append(HistoryEntry(item.account_id, item.request, outcome, reason, now,
                                          final=final))
        del self._history[:-HISTORY_LIMIT]
