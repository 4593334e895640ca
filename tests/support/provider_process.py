"""Real processes for end-to-end tests: any command with its output collected line by line
(``Process``), and a provider on 127.0.0.1 with the ``ciba-provider`` CLI bound to its instance
folder (``ProviderProcess``).

    with ProviderProcess(tmp_path) as op:             # ciba-provider serve --port <free>
        op.cli("users", "add", "alice", "--password", "pw")
        requests.get(op.url("/.well-known/openid-configuration"))
        link = op.approval_link("alice")              # the console channel's logged link

``server="gunicorn"`` runs gunicorn with the production worker class (server.gunicorn_worker's
gevent worker, as server.gunicorn_conf chooses) on ``server.wsgi:app`` instead (the production
setup; ``workers`` > 1 needs ``CIBA_REDIS_URL`` in ``env`` for device pushes); a subclass may
override ``command()`` for other options. Several processes may share one instance folder: pass
the same ``instance``. Output is kept in ``lines`` and appended to ``log_path``; a start that
fails raises with the output. ``stop()`` ends the process group (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import requests

from tests.support import cli_zygote

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def console_script(name: str, module: str) -> list[str]:
    """The installed console script (as the README says), or ``python -m`` in a bare checkout."""
    path = shutil.which(name)
    return [path] if path else [sys.executable, "-m", module]


class Process:
    """A command in its own process group, its combined output collected line by line (and
    appended to ``log_path`` when given): wait for a line, stop it with SIGINT like Ctrl-C or
    with ``stop()``, and check that nothing of its group is left behind."""

    def __init__(self, argv: list[str], env: dict | None = None, cwd: str | None = None,
                 log_path: Path | None = None) -> None:
        self.argv = argv
        self.lines: list[str] = []
        self.log_path = log_path
        self._changed = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, cwd=cwd,
            start_new_session=True)
        self.pgid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        log = open(self.log_path, "a") if self.log_path else None
        try:
            for line in self.proc.stdout:
                if log:
                    log.write(line)
                    log.flush()
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        finally:
            if log:
                log.close()
            with self._changed:
                self._eof = True
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0, start: int = 0,
                 newest: bool = False) -> re.Match:
        """The first (or with ``newest`` the last) output line from index ``start`` on matching
        the regex ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                lines = self.lines[start:]
                for line in reversed(lines) if newest else lines:
                    found = regex.search(line)
                    if found:
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}")
                self._changed.wait(min(left, 0.2))

    def interrupt(self, timeout: float = 15.0) -> int:
        """Ctrl-C: SIGINT to the whole process group, then wait for it to exit."""
        if self.proc.poll() is None:
            os.killpg(self.pgid, signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the whole process group; SIGKILL if it has not exited in ``timeout``."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pgid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pgid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._reader.join(timeout=5)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        if self.group_alive():
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def wait_http(url: str, timeout: float = 20.0, process: Process | None = None,
              verify: bool | str = True) -> requests.Response:
    """The first answer below 500 from ``url``; fails early if ``process`` exits. ``verify``:
    the CA bundle for an https URL, as requests takes it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=2, verify=verify)
            if response.status_code < 500:
                return response
        except requests.RequestException:
            pass
        if process is not None and process.proc.poll() is not None:
            raise AssertionError(f"process exited ({process.proc.returncode}) before {url} "
                                 f"answered:\n{process.output[-4000:]}")
        if time.monotonic() > deadline:
            output = f":\n{process.output[-4000:]}" if process is not None else ""
            raise AssertionError(f"{url} did not answer in {timeout} s{output}")
        time.sleep(0.1)


class ProviderProcess:
    APPROVAL_LINE = r"Login request for {username} .*Approve or deny at: (\S+)"

    def __init__(self, workdir: Path, *, instance: Path | None = None, port: int | None = None,
                 env: dict[str, str] | None = None, server: str = "serve", workers: int = 1,
                 name: str = "provider", issuer: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.instance = Path(instance) if instance else self.workdir / "instance"
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Several processes behind one public name share the issuer (pass it to each).
        self.issuer = issuer or self.base_url
        self.env = dict(env or {})
        self.server = server
        self.workers = workers
        self.log_path = self.workdir / f"{name}-{self.port}.log"
        self.process: Process | None = None
        self.verify: bool | str = True  # the CA bundle for an https provider (subclasses)
        self.cwd = ROOT  # where the server starts (another folder: the installed package)

    # -- environment ---------------------------------------------------------------------------
    def environ(self) -> dict[str, str]:
        return dict(os.environ, PYTHONUNBUFFERED="1", CIBA_INSTANCE_PATH=str(self.instance),
                    CIBA_ISSUER=self.issuer, **self.env)

    def url(self, path: str = "") -> str:
        """This process's own address (not the issuer, which may name another process)."""
        return self.base_url + path

    # -- the CLI, as an operator types it ------------------------------------------------------
    def cli_run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``ciba-provider ARGS --instance DIR --issuer URL``; never raises on exit status.
        Each command is a process of its own, forked from one that imported the CLI already
        (tests/support/cli_zygote.py: about 0.3 s instead of 2 s)."""
        argv = [*args, "--instance", str(self.instance), "--issuer", self.issuer]
        if cli_zygote.ENABLED:
            return cli_zygote.ZYGOTE.run(argv, self.environ(), str(ROOT), timeout)
        return subprocess.run(console_script("ciba-provider", "server.cli") + argv,
                              capture_output=True, text=True, timeout=timeout,
                              env=self.environ(), cwd=str(ROOT))

    def cli(self, *args: str, timeout: float = 60) -> str:
        """Like ``cli_run`` but returns stdout, raising RuntimeError on a non-zero exit."""
        done = self.cli_run(*args, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"ciba-provider {' '.join(args[:3])} exited {done.returncode}: "
                               f"{done.stderr[-2000:]}")
        return done.stdout

    def cli_json(self, *args: str, timeout: float = 60):
        """``cli`` for the commands that print JSON (``users add``, ``clients add``, ...)."""
        return json.loads(self.cli(*args, timeout=timeout))

    # -- the server ----------------------------------------------------------------------------
    def command(self) -> list[str]:
        if self.server == "gunicorn":
            return [sys.executable, "-m", "gunicorn", "-k", "server.gunicorn_worker.GeventWorker",
                    "-w", str(self.workers),
                    "--worker-connections", "20000", "-b", f"127.0.0.1:{self.port}",
                    "--graceful-timeout", "3", "server.wsgi:app"]
        return console_script("ciba-provider", "server.cli") + [
            "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--instance", str(self.instance), "--issuer", self.issuer]

    def start(self, timeout: float = 60) -> "ProviderProcess":
        self.instance.mkdir(parents=True, exist_ok=True)
        self.process = Process(self.command(), env=self.environ(), cwd=str(self.cwd),
                               log_path=self.log_path)
        try:
            wait_http(self.url("/.well-known/openid-configuration"), timeout, self.process,
                      verify=self.verify)
        except BaseException:
            self.stop()
            raise
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.process is not None:
            self.process.stop(timeout)

    # -- its output ----------------------------------------------------------------------------
    @property
    def lines(self) -> list[str]:
        """This run's output lines (kept after ``stop()``)."""
        return self.process.lines if self.process else []

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of ``log_path``, which keeps the output of every run with this name and port."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_for(self, pattern: str, timeout: float = 20.0, start: int = 0,
                 newest: bool = False) -> re.Match:
        assert self.process is not None, "the provider has not been started"
        return self.process.wait_for(pattern, timeout, start, newest)

    def approval_link(self, username: str, after: int = 0, timeout: float = 10.0) -> str:
        """The newest console-channel link logged for ``username`` among lines from ``after``."""
        pattern = self.APPROVAL_LINE.format(username=re.escape(username))
        return self.wait_for(pattern, timeout, start=after, newest=True).group(1)

    def __enter__(self) -> "ProviderProcess":
        return self if self.running() else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def stock_and_ours(app: str, probe: str, *flags: str) -> Iterator[list[int]]:
    """Two one-worker gunicorn servers of ``app`` on free ports, the stock gevent worker and
    ours (server.gunicorn_worker.GeventWorker), for byte-for-byte comparisons; yields their
    ports once ``probe`` (a path) answers on both."""
    started = []
    for worker_class in ("gevent", "server.gunicorn_worker.GeventWorker"):
        port = free_port()
        started.append((Process([sys.executable, "-m", "gunicorn", "-k", worker_class, "-w", "1",
                                 "-b", f"127.0.0.1:{port}", "--no-control-socket",
                                 "--graceful-timeout", "3", *flags, app]), port))
    try:
        for proc, port in started:
            wait_http(f"http://127.0.0.1:{port}{probe}", 60, proc)
        yield [port for _, port in started]
    finally:
        for proc, _ in started:
            proc.stop()
        assert "server.gunicorn_worker.GeventWorker" in started[1][0].output
