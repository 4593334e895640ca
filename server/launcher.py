"""``ciba-provider run``: the whole production deployment of one host, started by one command.

Two layouts (``--server``), both serving the same WSGI app (``server.wsgi:app``):

- ``granian`` (the default): granian's WSGI server for HTTP (``--bind``; Rust HTTP, the app in
  worker threads), ``--workers`` processes, but no WebSockets (an upgrade there is answered 501);
  and one gunicorn gevent process (server.gunicorn_conf) for the thousands of device WebSockets
  at ``/device/ws`` (``--device-bind``), which serves the whole app too. The load balancer sends
  ``/device/ws`` to the devices address and everything else to the HTTP one.
- ``gunicorn``: one gunicorn master with ``--workers`` gevent workers, each serving HTTP (through
  the WSGI lanes in front of Flask) and the device WebSockets on every address (``--bind``, and
  ``--device-bind`` when given), so no path routing is needed and it takes half the memory.
  Which is faster depends on the machine (docs/performance.md, "Round 5: the whole machine").

The processes are joined as several gunicorn workers are: the database for all durable state and
the directory version (caches), Redis (``CIBA_REDIS_URL``, required with more than one process)
for events to device sockets and for the polls' slow_down state. The Prometheus folder is shared,
so ``/metrics`` on any address sums every process.

The launcher stays in the foreground: SIGTERM or SIGINT stops every server; if one server exits,
the others are stopped and the launcher exits with a failure status (a supervisor restarts the
whole). gunicorn's master itself replaces a worker that dies.
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


#: The servers ``--server`` chooses from; the first is the default.
SERVERS = ("granian", "gunicorn")


def commands(bind: str, device_bind: str | None, workers: int,
             server: str = SERVERS[0]) -> list[list[str]]:
    """The command lines of the servers to start: one gunicorn (every address, ``workers``
    gevent workers), or granian for HTTP and gunicorn for the device sockets."""
    host, port = split_bind(bind)
    if device_bind:
        split_bind(device_bind)
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf"]
    if server == "gunicorn":
        binds = ["-b", bind] + (["-b", device_bind] if device_bind and device_bind != bind else [])
        return [[*gunicorn, "-w", str(workers), *binds, "server.wsgi:app"]]
    if server != "granian":
        raise StartupError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")
    if not device_bind:
        raise StartupError("--server granian holds no WebSockets: give --device-bind HOST:PORT "
                           "for the device server")
    # granian runs WSGI apps in a pool of threads, by default half its backpressure (512 per
    # process): that many threads contend for the GIL and each grows its own malloc arena.
    http = [sys.executable, "-m", "granian", "--interface", "wsgi", "--no-ws",
            "--workers", str(workers), "--host", host, "--port", str(port),
            "--blocking-threads", str(BLOCKING_THREADS), "--log-level", "warning",
            "server.wsgi:app"]
    return [http, [*gunicorn, "-w", "1", "-b", device_bind, "server.wsgi:app"]]


def preflight(settings: Settings, processes: int) -> None:
    """What ``server.wsgi`` checks, plus Redis when several processes serve: a login request
    made in one process reaches a device's socket in another only through the Redis bus."""
    check(settings)
    if processes > 1 and not settings.redis_url:
        raise StartupError(
            f"`ciba-provider run` starts {processes} processes, joined by Redis, but "
            "CIBA_REDIS_URL is empty: set CIBA_REDIS_URL=redis://HOST:6379/0, or run one "
            "process (--server gunicorn --workers 1; docs/deployment.md)")


def describe(bind: str, device_bind: str | None, workers: int, server: str) -> str:
    if server == "gunicorn":
        where = bind + (f" and {device_bind}" if device_bind and device_bind != bind else "")
        return f"HTTP and device WebSockets on {where} (gunicorn gevent, {workers} workers)"
    return (f"HTTP on {bind} (granian, {workers} workers); device WebSockets on {device_bind} "
            "(gunicorn gevent); route /device/ws there")


def run(bind: str, device_bind: str | None, workers: int, server: str = SERVERS[0]) -> int:
    settings = Settings.from_env()
    try:
        argvs = commands(bind, device_bind, workers, server)
        preflight(settings, workers + 1 if server == "granian" else workers)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    own_metrics = not env.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="ciba-metrics-")
    if not own_metrics:  # stale files of a previous run would be summed in
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.makedirs(metrics_dir, exist_ok=True)
    # One Prometheus folder for every server; server.gunicorn_conf must not make its own.
    env.update(PROMETHEUS_MULTIPROC_DIR=metrics_dir, CIBA_GUNICORN_CONF=str(os.getpid()))
    # glibc gives each thread that allocates its own arena (measured: 413 MiB for one granian
    # process with 64 threads, 159 MiB with two arenas, the same speed).
    granian_env = {"MALLOC_ARENA_MAX": "2", **env}
    # Each server leads its own process group, so that stopping it also reaches the workers
    # it forked, even when its master is killed before it could stop them (granian ignores
    # SIGTERM while its workers still start). The launcher forwards SIGTERM and SIGINT itself.
    children = [subprocess.Popen(argv, env=granian_env if "granian" in argv else env,
                                 start_new_session=True) for argv in argvs]
    print(describe(bind, device_bind, workers, server), file=sys.stderr, flush=True)
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
