"""Waiting for something another thread or process does soon, without asserting a time."""

from __future__ import annotations

import time
from typing import Callable


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """True once ``check()`` is; False if it never was within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False
