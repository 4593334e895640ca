"""The app's own sound for a new request (request.wav, a 0.4 s chime made by
assets/make_request_sound.py), played through Kivy's SoundLoader (SDL2_mixer on the desktop,
Android's MediaPlayer there).

It is loaded once, in idle time before it is first needed (opening the audio device can take a
moment). A machine without audio output (a server, a container, Xvfb in CI) is normal: Kivy then
reports a CRITICAL "Unable to open mixer" and ALSA prints to the terminal; the entry point's log
filter drops the first and the load runs with the C-level stderr silenced, so the person sees
one INFO line instead, and the desktop notification carries the theme's sound name in its place
(core/notifications.py).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

SOUND_FILE = Path(__file__).with_name("request.wav")


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send what C libraries write to stderr (ALSA's "Unknown PCM default") to /dev/null."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (Android, a GUI launcher)
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Chime:
    def __init__(self, path: Path = SOUND_FILE) -> None:
        self.path = path
        self.sound = None  # the loaded kivy.core.audio.Sound, once it could be loaded
        self._tried = False

    def prepare(self) -> bool:
        """Load the sound once; whether it can be played."""
        if not self._tried:
            self._tried = True
            from kivy.core.audio import SoundLoader
            with quiet_stderr():
                sound = SoundLoader.load(str(self.path))
            if sound is not None and sound.length > 0:
                self.sound = sound
            else:
                log.info("No audio output: new requests are announced without the app's sound")
        return self.sound is not None

    def play(self) -> bool:
        """Play it from the start; False when there is no audio output."""
        if not self.prepare():
            return False
        self.sound.stop()
        self.sound.play()
        return True
