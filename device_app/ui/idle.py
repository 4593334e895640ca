"""Work kept off the path of a new request: redrawing the screens that are not in front, building
a spare request card, loading the request sound, and the garbage collector. A mixin of
CibaDeviceApp.

A new request must reach the screen within a frame or two (bench/device_latency.py). So a change
redraws Home at once; the screen in front (History, Code, Settings) a moment later; the others
only when they are opened or when nothing has happened for a second ("idle time"), as a burst
of requests would otherwise pay for History rows nobody is looking at. (Under an endless burst
the idle work waits: a stale screen is brought up to date when it is opened.)

The garbage collector: a full pass over Kivy's object graph takes tens of milliseconds (hundreds
on a loaded machine), and Python starts one whenever enough objects have survived, in the middle
of drawing a request if it so happens. So once the app has built its screens, and again in idle
time, it collects and then freezes what is left (``gc.freeze``: moved out of the collector's
sight); the automatic passes then only look at objects made since. Every tenth idle pass (or
after ten minutes) unfreezes everything and collects in full, so that garbage cycles among
frozen objects (a widget removed since) are not kept for ever.
"""

from __future__ import annotations

import gc
import time

from kivy.clock import Clock

REFRESH_FRONT = 0.15  # seconds after a change: the screen in front, after Home has been drawn
IDLE_AFTER = 1.0  # seconds without a change before the idle work runs
FULL_COLLECTION_EVERY = 10  # idle passes between full (unfrozen) collections
FULL_COLLECTION_AFTER = 600.0  # seconds, whichever comes first
OTHER_SCREENS = ("history", "code", "settings")


class IdleWork:
    def start_idle_work(self) -> None:
        """Called once from build(): the triggers, and every screen other than Home stale."""
        self._stale: set[str] = set(OTHER_SCREENS)
        self._front_refresh = Clock.create_trigger(lambda _dt: self._refresh_front(), REFRESH_FRONT)
        self._idle_trigger = Clock.create_trigger(lambda _dt: self.idle_work(), IDLE_AFTER)
        self._idle_passes = 0
        self._full_collection_at = time.monotonic()

    def screens_changed(self) -> None:
        """Something shown changed (Home is already redrawn): the rest, later."""
        self._stale.update(OTHER_SCREENS)
        if self.screens.current in OTHER_SCREENS:
            self._front_refresh()
        self._idle_trigger.cancel()  # one more change: wait for a quiet second again
        self._idle_trigger()

    def refresh_if_stale(self, name: str) -> None:
        """A screen is being opened: bring it up to date first."""
        if name in self._stale:
            self._stale.discard(name)
            self.refresh_screen(name)

    def _refresh_front(self) -> None:
        self.refresh_if_stale(self.screens.current)

    def idle_work(self) -> None:
        """Nothing happened for a while: redraw the stale screens, build a spare card, and
        collect garbage now rather than while a request is being drawn."""
        for name in OTHER_SCREENS:
            self.refresh_if_stale(name)
        self.view.ids.home.keep_spare_card()
        if self.prefs.sound:
            self.chime.prepare()  # once: opening the audio device can take a moment
        self._idle_passes += 1
        now = time.monotonic()
        if self._idle_passes % FULL_COLLECTION_EVERY == 0 or \
                now - self._full_collection_at > FULL_COLLECTION_AFTER:
            gc.unfreeze()
            self._full_collection_at = now
        gc.collect()
        gc.freeze()
