"""DeviceService: what the app does, without a UI. The Kivy app is a thin face on top of it.

It owns the account store, one ProviderClient and one push listener per account, the inbox and
the connection states. Blocking work (HTTP, QR decoding) runs on worker threads; results come
back through ``dispatch`` (the UI passes a Clock.schedule_once wrapper; tests call directly), so
the inbox is only ever touched from one thread. ``on_change`` is called (through dispatch) after
anything the UI shows has changed.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .api import DecisionResult, ProviderClient, ProviderError
from .enrollment import enroll, parse_enrollment_uri
from .inbox import Inbox
from .qr import decode_file
from .store import Account, AccountStore
from .ws_listener import WebSocketListener

log = logging.getLogger(__name__)

Dispatch = Callable[[Callable[[], None]], None]
GOTIFY_REFRESH = 15  # seconds between re-fetches while a Gotify account has pending requests


def call_now(fn: Callable[[], None]) -> None:
    fn()


def in_background(work: Callable[[], Any], on_result: Callable[[Any], None],
                  on_error: Callable[[Exception], None], dispatch: Dispatch) -> threading.Thread:
    """Run ``work`` on a daemon thread; hand its result or exception back through ``dispatch``."""
    def run() -> None:
        try:
            result = work()
        except Exception as exc:  # reported to the person, never swallowed
            error = exc  # ``exc`` is unbound after the except block; the lambda runs later
            dispatch(lambda: on_error(error))
            return
        dispatch(lambda: on_result(result))

    thread = threading.Thread(target=run, name="ciba-work", daemon=True)
    thread.start()
    return thread


def _gotify_listener_class() -> Any:
    try:
        from .gotify_listener import GotifyListener
    except ImportError:
        return None
    return GotifyListener


class DeviceService:
    def __init__(self, data_dir: Path | str, dispatch: Dispatch = call_now,
                 on_change: Callable[[], None] | None = None) -> None:
        self.store = AccountStore(data_dir)
        self.inbox = Inbox()
        self.dispatch = dispatch
        self.on_change = on_change or (lambda: None)
        self.states: dict[str, str] = {}
        self._clients: dict[str, ProviderClient] = {}
        self._listeners: dict[str, Any] = {}
        self._refreshed: dict[str, float] = {}

    # accounts -----------------------------------------------------------------------------
    def accounts(self) -> list[Account]:
        return self.store.accounts()

    def client(self, device_id: str) -> ProviderClient:
        if device_id not in self._clients:
            account = self.store.get(device_id)
            if account is None:
                raise KeyError(device_id)
            self._clients[device_id] = ProviderClient(account, self.store.keys.load(device_id))
        return self._clients[device_id]

    def enroll_text(self, text: str, on_done: Callable[[Account], None],
                    on_error: Callable[[Exception], None], display_name: str | None = None,
                    push: str = "websocket") -> None:
        """Enroll from an enrollment link (either form); starts listening when done."""
        def work() -> Account:
            return enroll(self.store, parse_enrollment_uri(text), display_name, push)
        in_background(work, lambda account: self._enrolled(account, on_done), on_error, self.dispatch)

    def enroll_image(self, path: str, on_done: Callable[[Account], None],
                     on_error: Callable[[Exception], None], display_name: str | None = None,
                     push: str = "websocket") -> None:
        """Enroll from an image of the enrollment QR code."""
        def work() -> Account:
            return enroll(self.store, parse_enrollment_uri(decode_file(path)), display_name, push)
        in_background(work, lambda account: self._enrolled(account, on_done), on_error, self.dispatch)

    def _enrolled(self, account: Account, on_done: Callable[[Account], None]) -> None:
        log.info("Enrolled with %s", account.provider_label)
        self._listen(account)
        on_done(account)
        self.on_change()

    def remove_account(self, device_id: str) -> None:
        listener = self._listeners.pop(device_id, None)
        if listener is not None:
            listener.stop()
        self._clients.pop(device_id, None)
        self.states.pop(device_id, None)
        self.store.remove(device_id)
        self.inbox.remove_account(device_id)
        self.on_change()

    # push ---------------------------------------------------------------------------------
    def start(self) -> None:
        for account in self.accounts():
            self._listen(account)

    def stop(self) -> None:
        for listener in self._listeners.values():
            listener.stop()
        self._listeners.clear()

    def _listen(self, account: Account) -> None:
        if account.device_id in self._listeners:
            return
        device_id = account.device_id
        try:
            self.client(device_id)
        except (OSError, ValueError) as exc:  # key file missing or unreadable
            log.warning("The key of an account cannot be read (%s)", type(exc).__name__)
            self.states[device_id] = "broken"
            return
        on_state = lambda state, detail="": self.dispatch(lambda: self._set_state(device_id, state))
        on_message = lambda msg: self.dispatch(lambda: self._handle(device_id, msg))
        gotify = _gotify_listener_class()
        if account.push == "gotify" and gotify is not None:
            listener = gotify(account.channel.get("url"), account.channel.get("client_token"),
                              lambda _msg: self.refresh(device_id), on_state)
            self.refresh(device_id)
        else:
            listener = WebSocketListener(self.client(device_id), on_message, on_state)
        self._listeners[device_id] = listener
        listener.start()

    def _set_state(self, device_id: str, state: str) -> None:
        if device_id in self._listeners:
            self.states[device_id] = state
            self.on_change()

    def _handle(self, device_id: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        changed = False
        if kind == "sync":
            changed = self.inbox.sync(device_id, message.get("requests") or [])
        elif kind == "login_request" and isinstance(message.get("request"), dict):
            changed = self.inbox.add(device_id, message["request"])
        elif kind == "request_resolved":
            status = str(message.get("status"))
            item = self.inbox.get(str(message.get("request_id")))
            if item is not None and item.account_id == device_id and not item.busy:
                outcome = status if status in ("approved", "denied", "expired") else "failed"
                reason = "" if outcome == "expired" else "Decided on another device."
                changed = self.inbox.resolve(item.request_id, outcome, reason)
        elif kind == "device_revoked":
            self.states[device_id] = "revoked"
            self.inbox.remove_account(device_id)
            changed = True
        if changed:
            self.on_change()

    def refresh(self, device_id: str) -> None:
        """Fetch the account's pending requests now (after a Gotify nudge, or on demand)."""
        self._refreshed[device_id] = time.time()
        in_background(lambda: self.client(device_id).list_requests(),
                      lambda requests: self._handle(device_id, {"type": "sync", "requests": requests}),
                      lambda exc: log.info("Refresh failed: %s", getattr(exc, "error", type(exc).__name__)),
                      self.dispatch)

    # decisions ----------------------------------------------------------------------------
    def decide(self, request_id: str, accept: bool,
               on_done: Callable[[DecisionResult], None] | None = None) -> bool:
        """Send Accept or Deny for a pending request; False if it is not pending (or busy)."""
        item = self.inbox.get(request_id)
        if item is None or item.busy:
            return False
        self.inbox.set_busy(request_id)
        self.on_change()
        client = self.client(item.account_id)
        binding_message = item.binding_message

        def done(result: DecisionResult) -> None:
            if result.final:
                self.inbox.resolve(request_id, result.outcome, result.reason)
            else:  # never reached the provider: still pending there, the person may retry
                self.inbox.set_busy(request_id, False)
            self.on_change()
            if on_done:
                on_done(result)

        def failed(exc: Exception) -> None:
            reason = exc.description or exc.error if isinstance(exc, ProviderError) else type(exc).__name__
            done(DecisionResult("failed", reason))

        in_background(lambda: client.decide(request_id, accept, binding_message), done, failed, self.dispatch)
        return True

    def tick(self, now: float | None = None) -> None:
        """Called every second by the UI: moves expired requests to the history, and re-fetches
        the pending requests of Gotify accounts now and then (Gotify tells of new requests only,
        not of requests decided elsewhere)."""
        now = time.time() if now is None else now
        if self.inbox.expire(now):
            self.on_change()
        waiting = {p.account_id for p in self.inbox.pending()}
        for device_id, listener in list(self._listeners.items()):
            if device_id in waiting and not isinstance(listener, WebSocketListener) \
                    and now - self._refreshed.get(device_id, 0) >= GOTIFY_REFRESH:
                self.refresh(device_id)
