"""gunicorn settings for the provider: ``gunicorn -c python:server.gunicorn_conf server.wsgi:app``.

Command-line flags still override these. What this adds to plain flags:
- the gevent worker with many connections (each device holds a WebSocket), as our subclass
  server.gunicorn_worker.GeventWorker: the same worker, sending each response's headers with its
  body in one send (docs/performance.md, round 5);
- Prometheus multiprocess mode: PROMETHEUS_MULTIPROC_DIR (a fresh folder unless set) for every
  worker, and a dead worker's live gauges dropped (``child_exit``), so /metrics sums all workers;
  a folder made here is removed when the master exits (``on_exit``), so restarts leave no litter;
- no control socket unless CIBA_GUNICORN_CONTROL_SOCKET names one: gunicorn 25.1+ opens one at a
  fixed per-user path (``~/.gunicorn/gunicorn.ctl``), which a second master on the host takes
  over, so ``gunicornc`` could reload or stop the wrong server.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile

worker_class = "server.gunicorn_worker.GeventWorker"
worker_connections = 10000
graceful_timeout = 30
timeout = 60
control_socket = os.environ.get("CIBA_GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket  # older gunicorn ignores both

if not os.environ.get("CIBA_GUNICORN_CONF"):  # the master, once (workers inherit the mark)
    os.environ["CIBA_GUNICORN_CONF"] = str(os.getpid())
    _metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not _metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ciba-metrics-")
        os.environ["CIBA_METRICS_DIR_MADE"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    else:  # stale files of a previous run would be summed in
        shutil.rmtree(_metrics_dir, ignore_errors=True)
        os.makedirs(_metrics_dir, exist_ok=True)
    # Importing this module imported the ``server`` package, and with it server.metrics, before
    # the folder was set: rebuild the metrics on file-backed values before workers fork.
    importlib.reload(importlib.import_module("server.metrics"))


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    made = os.environ.get("CIBA_METRICS_DIR_MADE")
    if made and os.environ.get("CIBA_GUNICORN_CONF") == str(os.getpid()):
        shutil.rmtree(made, ignore_errors=True)
