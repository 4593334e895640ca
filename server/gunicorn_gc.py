"""Full garbage collections on a clock, for the gunicorn worker that holds the device sockets
(server.gunicorn_worker; docs/performance.md, "Round 6: devices")."""

from __future__ import annotations

#: Seconds between the worker's full (oldest-generation) garbage collections.
FULL_COLLECTION_SECONDS = 30.0
#: A threshold the oldest generation's count (full collections are due after this many
#: collections of the middle one) never reaches: full collections run on the clock instead.
_NEVER = 1 << 30


class FullCollections:
    """Full garbage collections on a clock instead of by allocation count, in a worker that
    holds the device sockets.

    Why: every connected device keeps ~17 objects the collector tracks (its socket, wsproto's
    state, the session), all alive. CPython collects the oldest generation whenever it has grown
    by a quarter, so a storm of 10,000 connects ran 10 or 11 full collections of a growing heap,
    1.3-1.7 s of the worker's CPU (about a tenth of the storm's), for almost no garbage; each
    one also stalls the event loop. The young generations keep their default thresholds (the
    connect path's own cyclic garbage is freed there). Every ``interval`` seconds the oldest one
    is collected when CPython's own rule asks for it (ten middle-generation collections since
    the last, and the oldest generation grown by a quarter since then), so a session's cycle
    left when its socket ends is freed within ``interval`` seconds of that, and a steady state
    (sockets connected, little growth) does not rescan them every ``interval``."""

    def __init__(self, interval: float = FULL_COLLECTION_SECONDS) -> None:
        import gc

        import gevent

        self.due_after = gc.get_threshold()[2]  # the default rule's count, kept as the trigger
        self.long_lived = len(gc.get_objects(2))
        gc.set_threshold(*gc.get_threshold()[:2], _NEVER)
        self.timer = gevent.get_hub().loop.timer(interval, interval)
        self.timer.start(gevent.spawn, self._tick)  # finalizers may block: not in the hub

    def _tick(self) -> None:
        import gc

        if gc.get_count()[2] < self.due_after:
            return
        if len(gc.get_objects(2)) - self.long_lived > self.long_lived // 4:  # a list: ~1 ms
            gc.collect()
            self.long_lived = len(gc.get_objects(2))

    def stop(self) -> None:
        import gc

        self.timer.stop()
        gc.set_threshold(*gc.get_threshold()[:2], self.due_after)
