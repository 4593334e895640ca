"""The worker that empties the notification outbox (CIBA §10.2, §10.3; FAPI-CIBA §5.2.2).

Every serving process runs one loop (a daemon thread; a greenlet under gevent), started by
``start()``. It wakes at once when this process makes a decision, and otherwise looks for due
rows every ``poll_interval`` seconds, which is how deliveries decided elsewhere, retries, and
rows left over from before a restart are picked up. The started loop also sweeps expired
requests (decisions.sweep_expired_once_per, one process per slot), so that push and ping clients
hear of an expiry (CIBA §12 expired_token) whether or not any device is connected. A process
that never called ``start()`` (a CLI command, a test app) runs the loop only from its first
decision until nothing is left to send, and sweeps nothing. A step:

1. claims due rows with a lease (storage/outbox.py), so several processes never send the same
   row at once;
2. makes the push success payload when the row has none yet (delivery.make_push_tokens);
3. POSTs it once, and records the outcome while still holding the lease: delivered; a final
   failure on any 4xx (no retry: FAPI-CIBA) or once the deadline (the request's expiry) has
   passed; otherwise a retry after exponential backoff with jitter, and never sooner than the
   client's Retry-After.

Final failures are logged (without payload) and listed for operators on /admin/deliveries.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING

import requests

from .. import metrics
from ..storage import outbox as outbox_repo
from . import decisions, delivery, netguard, retention

if TYPE_CHECKING:
    from .context import OAuthProvider
    from ..storage.models import CibaRequest

log = logging.getLogger(__name__)

LEASE = 60.0  # seconds a claim lasts; far longer than one attempt (delivery.TIMEOUT)
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0


def backoff(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: about 1, 2, 4, ... seconds, at most a minute, each
    drawn from the upper half of its step so that clients recovering together are spread."""
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return rng.uniform(step / 2, step)


class Outbox:
    def __init__(self, provider: "OAuthProvider", poll_interval: float = 1.0,
                 idle_polls: int = 30) -> None:
        self.p = provider
        self.poll_interval = poll_interval
        self.idle_polls = idle_polls  # a loop not start()ed ends after this many idle polls
        self._persistent = False
        self.http = requests.Session()
        self.guarded_http = netguard.public_only_session()  # self-registered clients
        self.rng = random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._swept_at = 0.0  # time.monotonic() of this loop's last sweep of expired requests
        self._purged_at = 0.0  # ... and of its last purge of old requests (retention.py)

    # -- the decision listener ------------------------------------------------------------------
    def __call__(self, req: "CibaRequest") -> None:
        """After a decision: the row is already stored; send it now rather than at the next
        poll."""
        if delivery.wanted(req):
            self.wake()

    def wake(self) -> None:
        self._ensure_thread()
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the loop for the life of this process (serving processes call this)."""
        self._persistent = True
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="ciba-outbox", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        idle = 0
        while not self._stop.is_set():
            woken = self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._persistent:
                    self._sweep()
                sent = 0
                while not self._stop.is_set():
                    done = self.step()
                    if not done:
                        break
                    sent += done
                if not self._persistent:
                    idle = 0 if sent or woken or self._pending() else idle + 1
            except Exception:
                log.exception("notification outbox step failed")
            if not self._persistent and idle >= self.idle_polls:
                with self._lock:
                    if not self._wake.is_set():
                        self._thread = None
                        return

    def _sweep(self) -> None:
        """Expired requests marked and announced (their notifications queued for this loop);
        now and then, requests past the retention deleted."""
        if time.monotonic() - self._swept_at < decisions.SWEEP_EVERY:
            return
        self._swept_at = time.monotonic()
        try:
            decisions.sweep_expired_once_per(self.p)
        except Exception:
            log.exception("sweeping expired requests failed")
        if time.monotonic() - self._purged_at >= retention.PURGE_EVERY:
            self._purged_at = time.monotonic()
            try:
                retention.purge_some(self.p)
            except Exception:
                log.exception("purging old requests failed")

    def _pending(self) -> bool:
        with self.p.db.session() as s:
            return outbox_repo.pending_count(s) > 0

    def step(self) -> int:
        """Send every delivery that is due now (one attempt each); returns how many."""
        owner = uuid.uuid4().hex
        now = self.p.clock.now()
        with self.p.db.session() as s:
            ids = outbox_repo.claim_due(s, owner, now, LEASE)
        for row_id in ids:
            try:
                self._attempt(row_id, owner)
            except Exception:
                log.exception("delivery %s failed unexpectedly", row_id[:8])
                self._reschedule_after_crash(row_id, owner)
        return len(ids)

    def _reschedule_after_crash(self, row_id: str, owner: str) -> None:
        """An internal error (storage down, ...) is retried like a network error, until the
        deadline; it never leaves a row leased forever."""
        now = self.p.clock.now()
        try:
            with self.p.db.session() as s:
                row = outbox_repo.held(s, row_id, owner)
                if row is None:
                    return
                row.attempts += 1
                row.last_error = "internal error (see the provider's log)"
                row.lease_owner, row.lease_until = None, None
                wait = backoff(row.attempts, self.rng)
                if now + wait <= row.deadline:
                    row.next_attempt_at = now + wait
                else:
                    row.status, row.finished_at = "failed", now
                    metrics.delivery("client", False)
        except Exception:
            log.exception("could not reschedule delivery %s; its lease will run out", row_id[:8])

    def _attempt(self, row_id: str, owner: str) -> None:
        sent = self._send(row_id, owner)
        if sent is not None:
            self._record(row_id, owner, *sent)

    def _send(self, row_id: str, owner: str) -> "tuple[str, str, delivery.Attempt] | None":
        """One attempt: (endpoint, mode, outcome), or None when the row was finished here."""
        p = self.p
        with p.db.session() as s:
            row = outbox_repo.get(s, row_id)
            if row is None:
                return None
            needs_tokens = row.payload_sealed is None
            guarded, refused = delivery.guard(s, row)
        if refused:
            # Retried like a network error (DNS may be right again); nothing is made or sent.
            return row.endpoint, row.mode, delivery.Attempt(
                retry=True, error=f"not sent: the notification endpoint {refused}")
        if needs_tokens and not delivery.make_push_tokens(p, row_id):
            self._finish(row_id, owner, "failed", None, "the request could not give tokens")
            return None
        with p.db.session() as s:
            row = outbox_repo.get(s, row_id)
            endpoint, sealed, mode = row.endpoint, row.payload_sealed, row.mode
        http = self.guarded_http if guarded else self.http
        return endpoint, mode, delivery.post(http, endpoint, sealed, p)

    def _record(self, row_id: str, owner: str, endpoint: str, mode: str,
                result: "delivery.Attempt") -> None:
        """Store the outcome while still holding the lease: delivered, retry later, or failed;
        then log it, so that a log line never announces an outcome a crash lost."""
        p = self.p
        now = p.clock.now()
        wait, why = 0.0, result.error
        with p.db.session() as s:
            row = outbox_repo.held(s, row_id, owner)
            if row is None:
                return  # the lease ran out and another worker took over
            row.attempts += 1
            row.last_status, row.last_error = result.status, result.error or None
            row.lease_owner, row.lease_until = None, None
            if result.delivered:
                row.status, row.finished_at, outcome = "delivered", now, "delivered"
            else:
                wait = backoff(row.attempts, self.rng)
                if result.retry_after is not None:
                    wait = max(wait, result.retry_after)  # RFC 9110 §10.2.3 Retry-After
                if result.retry and now + wait <= row.deadline:
                    row.next_attempt_at, outcome = now + wait, "retry"
                else:
                    row.status, row.finished_at, outcome = "failed", now, "failed"
                    if result.retry:
                        why = f"{result.error}, gave up at the request's expiry"
                    row.last_error = why
            attempts = row.attempts
        if outcome == "delivered":
            metrics.delivery("client", True)
        elif outcome == "retry":
            log.warning("%s notification to %s: %s; attempt %d, next in %.1f s", mode, endpoint,
                        result.error, attempts, wait)
        else:
            metrics.delivery("client", False)
            log.error("%s notification to %s failed for good after %d attempt(s): %s", mode,
                      endpoint, attempts, why)

    def _finish(self, row_id: str, owner: str, status: str, http_status: int | None,
                error: str) -> None:
        with self.p.db.session() as s:
            row = outbox_repo.held(s, row_id, owner)
            if row is not None:
                row.status, row.finished_at = status, self.p.clock.now()
                metrics.delivery("client", status == "delivered")
                row.last_status, row.last_error = http_status, error
                row.lease_owner, row.lease_until = None, None
