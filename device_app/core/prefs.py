"""The person's settings that are not accounts or keys: for now, whether a new request plays a
sound. Kept in ``settings.json`` in the data folder (0600, like the rest); a missing or broken
file means the defaults."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .keys import write_private_file

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
DEFAULTS = {"sound": True}


class Preferences:
    def __init__(self, data_dir: Path | str) -> None:
        self.path = Path(data_dir) / SETTINGS_FILE
        self._values = dict(DEFAULTS)
        try:
            stored = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            log.warning("The settings file was unreadable; using the defaults")
            return
        if isinstance(stored, dict):
            self._values.update({k: v for k, v in stored.items()
                                 if k in DEFAULTS and type(v) is type(DEFAULTS[k])})

    @property
    def sound(self) -> bool:
        """Play the app's sound when a request arrives while the window is behind."""
        return self._values["sound"]

    @sound.setter
    def sound(self, on: bool) -> None:
        self._values["sound"] = bool(on)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(self.path, json.dumps(self._values).encode())
