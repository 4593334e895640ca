"""WAL checkpoints of a SQLite file on an OS thread of each serving process, off the requests.

In WAL mode a commit appends pages to the log; SQLite copies them back into the database file
(a checkpoint) from inside whichever commit takes the log past ``wal_autocheckpoint`` pages
(1,000 by default), and with ``synchronous=NORMAL`` that checkpoint is also where the log and
the file are fsynced. So every few group commits one of them (and every caller waiting on it)
paid the copy and two fsyncs: about two thirds of what a bc-authorize's INSERT cost
(docs/performance.md, round 4), and under gevent on the event loop, stalling every request.

Here the process's connections checkpoint automatically only as a backstop (``BACKSTOP_PAGES``,
should this thread ever fall behind), and a thread of its own runs ``PRAGMA
wal_checkpoint(PASSIVE)`` every ``INTERVAL`` seconds on a connection of its own. sqlite3 releases
the GIL while SQLite works, and the thread is a real OS thread under gevent too, so the copy
and the fsyncs overlap the requests instead of stalling them. A PASSIVE checkpoint takes no
lock that a reader or a writer waits for and gives up where it would have to wait.

Durability is unchanged: a commit is durable once it is in the log (a killed process loses
nothing; SQLite replays the log on the next open), checkpointed or not.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from typing import Any, Callable

from .. import oslocks

log = logging.getLogger(__name__)

INTERVAL = 0.2  # seconds between checkpoints (about 1,000 pages at 1,000 bc-authorize/s)
BACKSTOP_PAGES = 20000  # the connections' own wal_autocheckpoint: 80 MB of log, never reached


class Checkpointer:
    """One per Database and process: ``ensure()`` (re)starts the thread in this process."""

    def __init__(self, path: str, owner: Any) -> None:
        self.path = path
        self._owner = weakref.ref(owner)  # the thread ends when its Database is gone
        self._pid = 0  # the process whose thread runs (a thread does not survive a fork)
        self._generation = 0  # a thread runs while this is the value it started with
        self.checkpoints = 0  # for tests and benchmarks
        self._lock = threading.Lock()  # two threads' first connections at once (granian)

    def ensure(self) -> None:
        """Called on each new connection: this process's thread, started once (again after
        ``stop``, when the engine makes connections anew)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            start, sleep = oslocks.os_threads()
            start(self._run, (sleep, self._generation))

    def stop(self) -> None:
        """The thread ends within ``INTERVAL`` (Database.dispose)."""
        with self._lock:
            self._generation += 1
            self._pid = 0

    def _running(self, pid: int, generation: int) -> bool:
        return (self._generation == generation and self._pid == pid
                and self._owner() is not None)

    def _run(self, sleep: Callable[[float], None], generation: int) -> None:
        pid = os.getpid()
        try:
            connection = sqlite3.connect(self.path, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:  # the folder went away: commits checkpoint at the backstop
            log.warning("WAL checkpoints of %s stopped: %s", self.path, exc)
            return
        try:
            while self._running(pid, generation):
                sleep(INTERVAL)
                if not self._running(pid, generation):
                    break
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # the file went away, or the disk is full
                    log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            connection.close()


def on_connect(checkpointer: Checkpointer, dbapi_connection: Any, _record: Any) -> None:
    """(The engine's connect event.) A new pooled connection of a SQLite file: automatic
    checkpoints only as a backstop, and this process's thread running."""
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}").fetchall()
    checkpointer.ensure()
