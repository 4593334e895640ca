"""A real provider process on 127.0.0.1 for end-to-end tests, and the ``ciba-provider`` CLI
bound to its instance folder.

    with ProviderProcess(tmp_path) as op:             # ciba-provider serve --port <free>
        op.cli("users", "add", "alice", "--password", "pw")
        requests.get(op.url("/.well-known/openid-configuration"))

``server="gunicorn"`` runs ``gunicorn -k gevent`` on ``server.wsgi:app`` instead (the production
setup; ``workers`` > 1 needs ``CIBA_REDIS_URL`` in ``env`` for device pushes). Several processes
may share one instance folder: pass the same ``instance``. Output goes to ``log_path``; a start
that fails raises with the log's tail. ``stop()`` ends the process group (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProviderProcess:
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
        self.proc: subprocess.Popen | None = None

    # -- environment ---------------------------------------------------------------------------
    def environ(self) -> dict[str, str]:
        return dict(os.environ, PYTHONUNBUFFERED="1", CIBA_INSTANCE_PATH=str(self.instance),
                    CIBA_ISSUER=self.issuer, **self.env)

    def url(self, path: str = "") -> str:
        """This process's own address (not the issuer, which may name another process)."""
        return self.base_url + path

    # -- the CLI -------------------------------------------------------------------------------
    def cli_run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``ciba-provider ARGS --instance DIR --issuer URL``; never raises on exit status."""
        command = [sys.executable, "-m", "server.cli", *args, "--instance", str(self.instance),
                   "--issuer", self.issuer]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=self.environ())

    def cli(self, *args: str, timeout: float = 60) -> str:
        """Like ``cli_run`` but returns stdout, raising RuntimeError on a non-zero exit."""
        done = self.cli_run(*args, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"ciba-provider {' '.join(args[:3])} exited {done.returncode}: "
                               f"{done.stderr[-2000:]}")
        return done.stdout

    # -- the server ----------------------------------------------------------------------------
    def command(self) -> list[str]:
        if self.server == "gunicorn":
            return [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", str(self.workers),
                    "--worker-connections", "20000", "-b", f"127.0.0.1:{self.port}",
                    "--graceful-timeout", "3", "server.wsgi:app"]
        return [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--instance", str(self.instance),
                "--issuer", self.issuer]

    def start(self, timeout: float = 60) -> "ProviderProcess":
        self.instance.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=self.environ(),
                                         cwd=str(Path(__file__).resolve().parents[2]))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the provider exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if requests.get(self.url("/.well-known/openid-configuration"), timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the provider did not answer within {timeout} s:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self.proc = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> "ProviderProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
