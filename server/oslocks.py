"""The OS's own threads, sleep and locks, also in a process gevent monkey-patched.

A critical section that never yields inside (dict and list operations, one SQLite call) needs
only a lock against OS threads (granian's, ``serve``'s, the checkpoint thread). Under gevent,
``threading.Lock`` is gevent's, written in Python and about twice the cost of the OS's; it would
also let another greenlet wait in it, which a section that never yields cannot need. A section
that may block (a socket write) keeps ``threading.Lock``: an OS lock held across a greenlet
switch would block the whole thread.
"""

from __future__ import annotations

import _thread
import sys
import time
from typing import Any, Callable


def gevent_patched() -> bool:
    """Whether gevent has patched ``threading`` in this process (its threads are greenlets)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def _original(module: str, name: str, default: Any) -> Any:
    if gevent_patched():
        return sys.modules["gevent.monkey"].get_original(module, name)
    return default


def os_lock() -> Any:
    """A lock of the OS (``_thread.LockType``), for sections that never yield."""
    return _original("_thread", "allocate_lock", _thread.allocate_lock)()


def os_threads() -> tuple[Callable, Callable[[float], None]]:
    """(start_new_thread, sleep) of the OS."""
    return (_original("_thread", "start_new_thread", _thread.start_new_thread),
            _original("time", "sleep", time.sleep))
