"""``ciba-provider run``: the whole production deployment of one host, started by one command.

Two servers run the same WSGI app (``server.wsgi:app``), each doing what it does best:

- **HTTP** (``--bind``): granian's WSGI server (Rust HTTP, the app in worker threads), ``--workers``
  processes. It answers bc-authorize, token polls and every page about 1.6 times as fast as
  gunicorn's gevent worker and with a far shorter tail (docs/performance.md), but holds no
  WebSockets (its WSGI interface has none).
- **Devices** (``--device-bind``): gunicorn's gevent worker (server.gunicorn_conf), one process,
  for the thousands of device WebSockets at ``/device/ws``. It serves the whole app too, so a
  host without a load balancer can send everything there.

The load balancer sends ``/device/ws`` to the devices address and everything else to the HTTP one
(docs/deployment.md). The processes are joined as several gunicorn workers are: the database for
all durable state and the directory version (caches), Redis (``CIBA_REDIS_URL``, required here)
for events to device sockets and for the polls' slow_down state. The Prometheus folder is shared,
so ``/metrics`` on either address sums every process.

The launcher stays in the foreground: SIGTERM or SIGINT stops both servers; if one server exits,
the other is stopped and the launcher exits with its status (a supervisor restarts the whole).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .config import Settings
from .startup import StartupError, check

#: Seconds each server gets to finish its requests when the launcher stops.
GRACE = 30
#: Threads running the app in each HTTP process: enough for group commit to batch the INSERTs of
#: concurrent bc-authorize requests, few enough that they do not fight over the GIL.
BLOCKING_THREADS = 8


def usable_cpus(cgroup: str = "/sys/fs/cgroup") -> int:
    """The cores this process may really use, for one HTTP process each: the CPU affinity, capped
    by a container's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), which
    ``os.cpu_count()`` ignores: a 2-CPU container on a 64-core host would start 64 processes."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for quota_file, period_file in (("cpu.max", None),
                                    ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:
            fields = open(os.path.join(cgroup, quota_file)).read().split()
            if period_file:
                fields.append(open(os.path.join(cgroup, period_file)).read().strip())
            quota, period = int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):  # "max", -1, absent: no quota
            continue
        if quota > 0 and period > 0:
            return max(1, min(cpus or 1, math.ceil(quota / period)))
    return max(1, cpus or 1)


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise StartupError(f"{bind!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def commands(bind: str, device_bind: str, workers: int) -> list[list[str]]:
    """The HTTP server's and the device server's command lines."""
    host, port = split_bind(bind)
    split_bind(device_bind)
    # granian runs WSGI apps in a pool of threads, by default half its backpressure (512 per
    # process): that many threads contend for the GIL and each grows its own malloc arena.
    http = [sys.executable, "-m", "granian", "--interface", "wsgi", "--no-ws",
            "--workers", str(workers), "--host", host, "--port", str(port),
            "--blocking-threads", str(BLOCKING_THREADS), "--log-level", "warning",
            "server.wsgi:app"]
    devices = [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf", "-w", "1",
               "-b", device_bind, "server.wsgi:app"]
    return [http, devices]


def preflight(settings: Settings) -> None:
    """What ``server.wsgi`` checks, plus Redis: HTTP and devices are separate processes, so a
    login request made over HTTP reaches a device's socket only through the Redis bus."""
    check(settings)
    if not settings.redis_url:
        raise StartupError(
            "`ciba-provider run` serves HTTP and device WebSockets from separate processes, "
            "joined by Redis, but CIBA_REDIS_URL is empty: set CIBA_REDIS_URL=redis://HOST:6379/0, "
            "or run gunicorn alone (docs/deployment.md, one worker without Redis)")


def run(bind: str, device_bind: str, workers: int) -> int:
    settings = Settings.from_env()
    try:
        preflight(settings)
        argvs = commands(bind, device_bind, workers)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    own_metrics = not env.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="ciba-metrics-")
    if not own_metrics:  # stale files of a previous run would be summed in
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.makedirs(metrics_dir, exist_ok=True)
    # One Prometheus folder for both servers; server.gunicorn_conf must not make its own.
    env.update(PROMETHEUS_MULTIPROC_DIR=metrics_dir, CIBA_GUNICORN_CONF=str(os.getpid()))
    # glibc gives each thread that allocates its own arena (measured: 413 MiB for one granian
    # process with 64 threads, 159 MiB with two arenas, the same speed).
    http_env = {"MALLOC_ARENA_MAX": "2", **env}
    # Each server leads its own process group, so that stopping it also reaches the workers
    # it forked, even when its master is killed before it could stop them (granian ignores
    # SIGTERM while its workers still start). The launcher forwards SIGTERM and SIGINT itself.
    children = [subprocess.Popen(argvs[0], env=http_env, start_new_session=True),
                subprocess.Popen(argvs[1], env=env, start_new_session=True)]
    print(f"HTTP on {bind} (granian, {workers} workers); device WebSockets on {device_bind} "
          f"(gunicorn gevent); route /device/ws there", file=sys.stderr, flush=True)
    stopping = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        # A server that exits on its own is a failure, whatever its status.
        code = next((c.returncode or 1 for c in children if c.returncode is not None), 0)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for child in children:  # workers left behind by a master that exited or was killed
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if own_metrics:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code if not stopping else 0
