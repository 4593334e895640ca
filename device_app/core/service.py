"""DeviceService: what the app does, without a UI. The Kivy app is a thin face on top of it.

It owns the account store, one ProviderClient and one push listener per account, the inbox and
the connection states. Blocking work (HTTP, QR decoding) runs on worker threads; results come
back through ``dispatch`` (the UI passes a Clock.schedule_once wrapper; tests call directly), so
the inbox is only ever touched from one thread. ``on_change`` is called (through dispatch) after
anything the UI shows has changed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .api import DecisionResult, ProviderClient, ProviderError
from .enrollment import enroll, parse_enrollment_uri
from .inbox import Inbox, PendingRequest
from .keys import write_private_file
from .lock import AppLock, Locked
from .qr import decode_file
from .store import Account, AccountStore
from .ws_listener import WebSocketListener

log = logging.getLogger(__name__)

Dispatch = Callable[[Callable[[], None]], None]
GOTIFY_REFRESH = 15  # seconds between re-fetches while a Gotify account has pending requests
INBOX_FILE = "inbox.json"  # pending requests and history, kept across restarts (0600)
Notice = Callable[[str, str], None]  # (kind, text): "cancelled", "expired", "elsewhere", "arrived"


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
                 on_change: Callable[[], None] | None = None,
                 on_notice: Notice | None = None) -> None:
        self.lock = AppLock(data_dir)
        self.store = AccountStore(data_dir, self.lock)
        self.inbox = Inbox()
        self.dispatch = dispatch
        self._on_change = on_change or (lambda: None)
        self.on_notice = on_notice or (lambda kind, text: None)
        self.states: dict[str, str] = {}
        self._clients: dict[str, ProviderClient] = {}
        self._listeners: dict[str, Any] = {}
        self._refreshed: dict[str, float] = {}
        self._inbox_path = Path(data_dir) / INBOX_FILE
        self._save_wanted = threading.Event()
        self._saver: threading.Thread | None = None
        self._load_inbox()

    # the inbox on disk ----------------------------------------------------------------------
    def _load_inbox(self) -> None:
        try:
            self.inbox.load(json.loads(self._inbox_path.read_text()))
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, AttributeError):
            log.warning("The saved inbox was unreadable; starting with an empty history")

    def on_change(self) -> None:
        """Something the UI shows changed: redraw, and save the inbox soon (off this thread)."""
        self._save_wanted.set()
        if self._saver is None:
            self._saver = threading.Thread(target=self._save_loop, name="ciba-inbox", daemon=True)
            self._saver.start()
        self._on_change()

    def _save_loop(self) -> None:
        """The one writer of inbox.json: a snapshot taken on the UI thread, written here."""
        while True:
            self._save_wanted.wait()
            time.sleep(0.3)  # one write for a burst of changes, never on the UI thread's path
            self._save_wanted.clear()
            taken, box = threading.Event(), {}

            def snapshot() -> None:
                box["data"] = self.inbox.dump()
                taken.set()

            self.dispatch(snapshot)
            if taken.wait(10) and self._inbox_path.parent.is_dir():
                try:
                    write_private_file(self._inbox_path, json.dumps(box["data"]).encode())
                except OSError as exc:
                    log.warning("Could not save the history (%s)", type(exc).__name__)

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
        except Locked:  # the PIN has not been entered yet: unlock() starts it
            self.states[device_id] = "locked"
            return
        except (OSError, ValueError) as exc:  # key file missing or unreadable
            log.warning("The key of an account cannot be read (%s)", type(exc).__name__)
            self.states[device_id] = "broken"
            return
        on_state = lambda state, detail="": self.dispatch(lambda: self._set_state(device_id, state))
        on_message = lambda msg: self.dispatch(lambda: self._handle(device_id, msg))
        gotify = _gotify_listener_class()
        if account.push == "gotify" and gotify is not None:
            listener = gotify(account.channel.get("url"), account.channel.get("client_token"),
                              lambda msg: self._gotify_nudge(account, msg), on_state)
            self.refresh(device_id)
        else:
            listener = WebSocketListener(self.client(device_id), on_message, on_state)
        self._listeners[device_id] = listener
        listener.start()

    def _gotify_nudge(self, account: Account, message: dict[str, Any]) -> None:
        """A Gotify message (on the listener thread) is a nudge: fetch the pending list. A
        ``cancelled`` about a request no longer pending here (approved, then withdrawn by its
        client) leaves that list as it was, so that request is asked about (a signed GET)."""
        from .gotify_listener import ciba_event

        device_id = account.device_id
        self.refresh(device_id)
        event = ciba_event(message, account.issuer) or {}
        request_id = str(event.get("request_id") or "")
        if event.get("event") != "request_resolved" or event.get("status") != "cancelled" \
                or not request_id:
            return
        in_background(lambda: self.client(device_id).get_request(request_id),
                      lambda req: req and self._handle(device_id, {
                          "type": "request_resolved", "request_id": request_id,
                          "status": req.get("status")}),
                      lambda exc: log.info("Asking about a request failed: %s", type(exc).__name__),
                      self.dispatch)

    def _set_state(self, device_id: str, state: str) -> None:
        if device_id in self._listeners:
            self.states[device_id] = state
            self.on_change()

    def _handle(self, device_id: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        before = {p.request_id for p in self.inbox.pending()}
        changed = False
        if kind == "sync":
            changed = self.inbox.sync(device_id, message.get("requests") or [])
            self._settle_dropped(device_id)
        elif kind == "login_request" and isinstance(message.get("request"), dict):
            changed = self.inbox.add(device_id, message["request"])
        elif kind == "request_resolved":
            status = str(message.get("status"))
            item = self.inbox.get(str(message.get("request_id")))
            if item is not None and item.account_id == device_id and not item.busy:
                outcome, reason = self._ended(item, status)
                changed = self.inbox.resolve(item.request_id, outcome, reason)
                self.on_notice(outcome, reason)
            elif item is None and status == "cancelled":
                changed = self._approval_withdrawn(device_id, str(message.get("request_id")))
        elif kind == "device_revoked":
            self.states[device_id] = "revoked"
            self.inbox.remove_account(device_id)
            changed = True
        if changed:
            self.on_change()
            for item in self.inbox.pending():
                if item.request_id not in before:
                    self.on_notice("arrived", item.request_id)

    def _approval_withdrawn(self, device_id: str, request_id: str) -> bool:
        """An approved request cancelled by its client before it fetched the tokens."""
        entry = self.inbox.entry(request_id)
        if entry is None or entry.account_id != device_id:
            return False
        name = str(entry.request.get("client_name") or "The application")
        reason = f"You approved it, but {name} cancelled before signing you in: nothing was shared."
        if not self.inbox.approval_withdrawn(request_id, reason):
            return False
        self.on_notice("cancelled", reason)
        return True

    @staticmethod
    def _ended(item: PendingRequest, status: str) -> tuple[str, str]:
        """The history outcome and the words for a request that ended elsewhere."""
        if status == "cancelled":
            return "cancelled", f"Cancelled by {item.client_name}. Nobody is waiting for an answer."
        if status == "expired":
            return "expired", f"{item.client_name} waited too long: the request expired."
        if status in ("approved", "denied"):
            return status, "Decided on another device."
        return "failed", "The request ended."

    def _settle_dropped(self, device_id: str) -> None:
        """Ask the provider what became of requests that left the list without a word."""
        for item in self.inbox.dropped():
            if item.account_id != device_id:
                continue

            def found(body, item=item) -> None:
                status = str((body or {}).get("status") or "")
                outcome, reason = self._ended(item, status) if status != "pending" else ("", "")
                if outcome and self.inbox.settle(item.request_id, outcome, reason):
                    self.on_change()
                    self.on_notice(outcome, reason)

            in_background(lambda item=item: self.client(device_id).get_request(item.request_id),
                          found, lambda exc: None, self.dispatch)

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
                self.inbox.note_unsent(request_id, f"Your {'Accept' if accept else 'Deny'} was "
                                                   f"not sent: {result.reason}")
            self.on_change()
            if on_done:
                on_done(result)

        def failed(exc: Exception) -> None:
            reason = exc.description or exc.error if isinstance(exc, ProviderError) else type(exc).__name__
            done(DecisionResult("failed", reason))

        in_background(lambda: client.decide(request_id, accept, binding_message), done, failed, self.dispatch)
        return True

    def report(self, request_id: str, on_done: Callable[[dict], None],
               on_error: Callable[[Exception], None]) -> bool:
        """“I didn't request this” for a request in the history (docs/device-protocol.md §6a)."""
        entry = self.inbox.entry(request_id)
        if entry is None or self.store.get(entry.account_id) is None:
            return False
        client = self.client(entry.account_id)

        def done(body: dict) -> None:
            self.inbox.mark_reported(request_id)
            self.on_change()
            on_done(body)

        in_background(lambda: client.report(request_id), done, on_error, self.dispatch)
        return True

    # the app lock ---------------------------------------------------------------------------
    def unlock(self, pin: str) -> None:
        """Enter the PIN (PinError when wrong); starts the accounts that were waiting for it."""
        self.lock.unlock(pin)
        self.start()
        self.on_change()

    def set_pin(self, new_pin: str, current_pin: str | None = None) -> None:
        self.lock.set_pin(new_pin, self.store.keys.plain_files(), current_pin)
        self.on_change()

    def remove_pin(self, pin: str) -> None:
        self.lock.remove_pin(pin, self.store.keys.encrypted_files())
        self.on_change()

    def forget_pin(self) -> None:
        """Forgot the PIN: the keys cannot be opened, so every account is removed."""
        for account in self.accounts():
            self.remove_account(account.device_id)
        self.lock.forget()
        self.on_change()

    def retry_now(self) -> None:
        """Connect at once (the person pressed Retry): wakes every listener waiting to retry."""
        for listener in self._listeners.values():
            wake = getattr(listener, "retry_now", None)
            if wake:
                wake()

    def tick(self, now: float | None = None) -> None:
        """Called every second by the UI: moves expired requests to the history, and re-fetches
        the pending requests of Gotify accounts now and then (Gotify tells of new requests only,
        not of requests decided elsewhere)."""
        now = time.time() if now is None else now
        gone = [self.inbox.get(r) for r in [p.request_id for p in self.inbox.pending()]]
        expired = self.inbox.expire(now)
        for item in gone:
            if item is not None and item.request_id in expired:
                self.on_notice("expired", f"{item.client_name} waited too long: the request "
                                          "expired.")
        if expired:
            self.on_change()
        waiting = {p.account_id for p in self.inbox.pending()}
        for device_id, listener in list(self._listeners.items()):
            if device_id in waiting and not isinstance(listener, WebSocketListener) \
                    and now - self._refreshed.get(device_id, 0) >= GOTIFY_REFRESH:
                self.refresh(device_id)
