"""The event bus between provider processes.

Any process may create a request, decide one or revoke a device, while the device's WebSocket
lives in one process (one gunicorn worker) only. Events therefore go through a bus that every
process listens to:

- ``InProcessBus`` (default): delivers to the handlers of this process, at once, in the caller.
  Right for one process (``ciba-provider serve``, one gunicorn worker).
- ``RedisBus`` (``CIBA_REDIS_URL`` set): Redis pub/sub on one channel per issuer; each process
  listens from one background thread (a greenlet under gevent) started by ``start()``. A publish
  does not wait for Redis: it queues the message, and a background loop sends every queued
  message, in order, in one pipeline (a round trip per bc-authorize was the larger part of what
  Redis cost a granian process, docs/performance.md round 10). If Redis cannot be reached, the
  messages are delivered locally and logged, so this process's sockets still hear them. The
  ``redis`` package is needed only then (``pip install ciba-stack[redis]``).

Messages are small JSON objects: ``{"kind": "send", "user_id", "message"}`` and
``{"kind": "drop", "device_ids"}``. They never carry tokens or secrets.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Callable

log = logging.getLogger(__name__)

Handler = Callable[[dict], None]


class InProcessBus:
    #: A message reaches this process's handlers only (RedisBus: every process's).
    local_only = True

    def __init__(self) -> None:
        self.handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def publish(self, message: dict) -> None:
        self._deliver(message)

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def _deliver(self, message: dict) -> None:
        for handler in list(self.handlers):
            try:
                handler(message)
            except Exception:
                log.exception("bus handler failed for a %s event", message.get("kind"))


class RedisBus(InProcessBus):
    local_only = False

    def __init__(self, url: str, namespace: str) -> None:
        super().__init__()
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError("CIBA_REDIS_URL is set but the redis package is not installed "
                               "(pip install 'ciba-stack[redis]')") from exc
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5,
                                           health_check_interval=30)
        self.channel = "ciba:events:" + hashlib.sha256(namespace.encode()).hexdigest()[:16]
        self._started = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._queue: deque[tuple[dict, str]] = deque()  # (message, its JSON), not sent yet
        self._wake = threading.Event()
        self._send_lock = threading.Lock()
        self._sender_pid = 0

    def publish(self, message: dict) -> None:
        self._queue.append((message, json.dumps(message, separators=(",", ":"))))
        if self._sender_pid != os.getpid():  # first use, or a forked child
            self._sender_pid = os.getpid()
            threading.Thread(target=self._send_queued, name="ciba-bus-send", daemon=True).start()
            _publishers.add(self)
        self._wake.set()

    def _send_queued(self) -> None:
        """The background loop: queued messages to Redis, in order, one pipeline per round."""
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            self._send_all()

    def _send_all(self) -> None:
        """Every queued message sent (or delivered here); returns only once a send that
        another thread began has ended too, so that a process may end right after."""
        with self._send_lock:  # held across Redis I/O: gevent's lock under gevent
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), 500))]
                try:
                    pipe = self._redis.pipeline(transaction=False)
                    for _message, data in batch:
                        pipe.publish(self.channel, data)
                    pipe.execute()
                except Exception as exc:
                    log.error("Redis publish failed (%s); delivering %d events in this "
                              "process only", type(exc).__name__, len(batch))
                    for message, _data in batch:
                        self._deliver(message)

    def start(self, wait: float = 5.0) -> None:
        """Start listening (once per process, after any fork); waits until subscribed."""
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._listen, name="ciba-bus", daemon=True).start()
        self._ready.wait(wait)

    def close(self) -> None:
        """Stop listening and sending; what is still queued is sent now."""
        self._stop.set()
        self._wake.set()
        self._send_all()

    def _listen(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                self._ready.set()
                delay = 0.5
                while not self._stop.is_set():
                    item = pubsub.get_message(timeout=1.0)
                    if item and item.get("type") == "message":
                        try:
                            message = json.loads(item["data"])
                        except ValueError:
                            continue
                        if isinstance(message, dict):
                            self._deliver(message)
            except Exception as exc:
                log.warning("Redis bus connection lost (%s); reconnecting in %.1f s",
                            type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                try:
                    pubsub.close()
                except Exception:
                    pass


#: The buses of this process that have published: ``flush_all`` sends what they still queue.
_publishers: "weakref.WeakSet[RedisBus]" = weakref.WeakSet()


def flush_all() -> None:
    """Send every message still queued in this process, now: a short-lived process that
    published (the CLI revoking a device) calls this before it ends, and so does exit."""
    for bus in list(_publishers):
        bus._send_all()


atexit.register(flush_all)


def make_bus(redis_url: str, namespace: str) -> InProcessBus:
    return RedisBus(redis_url, namespace) if redis_url else InProcessBus()
