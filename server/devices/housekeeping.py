"""Background work of a process that holds device sockets, one loop per process.

Every ``interval`` seconds:

- expired requests are withdrawn (``oauth.decisions.sweep_expired_once_per``: marks them expired
  and sends ``request_resolved``). Several processes may run this loop, and every serving
  process's outbox loop runs it too (so expiry is noticed without devices); a lease in storage
  (a single-use key per time slot) lets only one of them sweep per slot, so devices hear each
  expiry once;
- devices revoked by another process that could not reach this one (the CLI without Redis) are
  dropped from this process's hub;
- old single-use markers are purged now and then.

It starts with the first WebSocket a process accepts (after any fork), as a daemon thread, which
is a greenlet under gunicorn's gevent worker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from ..notify.hub import Hub
from ..oauth.decisions import sweep_expired_once_per
from ..ports import ProviderCore
from ..storage import counters, devices as device_repo, replay
from .service import ENROLL_WINDOW, DeviceService

log = logging.getLogger(__name__)

PURGE_EVERY = 300  # seconds


class HousekeepingProvider(ProviderCore, Protocol):
    """The provider as the housekeeper uses it: its core and the device service (whose
    last-seen times it flushes)."""

    @property
    def devices(self) -> DeviceService | None: ...


class Housekeeper:
    def __init__(self, provider: HousekeepingProvider, hub: Hub, interval: float = 2.0) -> None:
        self.p = provider
        self.hub = hub
        self.interval = interval
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._revoked_checked = provider.clock.now()
        self._last_purge = 0.0

    def start(self) -> None:
        if self._started:  # every device connect asks: no lock once started
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="ciba-housekeeping", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("device housekeeping failed")

    def tick(self) -> dict:
        now = self.p.clock.now()
        done = {"expired": 0, "dropped": 0}
        done["expired"] = sweep_expired_once_per(self.p, self.interval)
        if len(self.hub):
            since, self._revoked_checked = self._revoked_checked - 5 * self.interval, now
            with self.p.db.session() as s:
                revoked = set(device_repo.revoked_since(s, since))
            if revoked & self.hub.connected_devices():
                done["dropped"] = self.hub.drop_devices(revoked)
        else:
            self._revoked_checked = now
        self.p.devices.flush_last_seen()
        if time.monotonic() - self._last_purge > PURGE_EVERY:
            self._last_purge = time.monotonic()
            with self.p.db.session() as s:
                replay.purge(s, now)
                counters.purge(s, now, self._longest_window())
        return done

    def _longest_window(self) -> float:
        """The longest window of any rate counter (sign-in, user code, enrollment)."""
        s = self.p.settings
        return float(max(s.signin_window, s.user_code_lockout, ENROLL_WINDOW))
