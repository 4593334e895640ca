"""``ciba-provider`` commands for the tests, each in a process of its own, forked from one
that has already imported the CLI.

Why: a command as an operator types it starts a fresh Python that spends about 1.8 of its 2 s
importing Flask, SQLAlchemy and Alembic; the suite seeds most providers with several commands,
which made process starts a large share of its time. Forked from a process that imported them
once, each command still runs ``server.cli.main`` in a new process with its own environment,
working folder, stdout, stderr and exit status, and reads and writes the instance's files and
database as the console script does (the zygote itself never opens a database, so nothing is
shared but imported code). The console script's own start (its entry point and ``python -m``)
is tested where it matters (tests/server/test_cli.py, the demo's tests, the quick start,
the documented production command), not in every seed. ``CIBA_TEST_CLI_FORK=0`` runs real console scripts.

Protocol: one JSON line per command on the zygote's stdin (argv, env, cwd, timeout), one JSON
line back on its stdout (returncode, stdout, stderr, timed_out).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("CIBA_TEST_CLI_FORK", "1") != "0" and hasattr(os, "fork")


def _run_child(request: dict, out_fd: int, err_fd: int) -> None:
    """In the forked child: become the command, then exit with its status (never returns)."""
    code = 1
    try:
        os.setpgid(0, 0)  # a group of its own, like a command started by a shell
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.argv = ["ciba-provider", *request["argv"]]
        from server.cli import main
        try:
            code = main(request["argv"])
        except SystemExit as exc:  # argparse's usage errors, sys.exit in a command
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
    except BaseException:  # noqa: BLE001 - the traceback a real process would print
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code if isinstance(code, int) else 1)


def _answer(request: dict) -> dict:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            _run_child(request, out.fileno(), err.fileno())
        deadline = time.monotonic() + request["timeout"]
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                timed_out = True
                os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.005)
        out.seek(0)
        err.seek(0)
        return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
                "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace")}


def serve() -> None:
    """The zygote: import the CLI and what its commands import, then fork one child per line."""
    import server.cli
    import server.wiring  # noqa: F401 - provider_from's import
    server.cli.build_parser()  # the commands' modules
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not break the protocol
    print("ready", file=channel, flush=True)
    for line in sys.stdin:
        print(json.dumps(_answer(json.loads(line))), file=channel, flush=True)


class Zygote:
    """The pytest side: starts the zygote on first use, one command at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", "from tests.support.cli_zygote import "
                                 "serve; serve()"], cwd=str(ROOT), text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise RuntimeError("the CLI zygote did not start")
        atexit.register(proc.kill)
        return proc

    def run(self, argv: list[str], env: dict, cwd: str,
            timeout: float) -> subprocess.CompletedProcess:
        """Like ``subprocess.run(capture_output=True, text=True, timeout=...)``."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            self._proc.stdin.write(json.dumps({"argv": argv, "env": env, "cwd": cwd,
                                               "timeout": timeout}) + "\n")
            self._proc.stdin.flush()
            answer = json.loads(self._proc.stdout.readline())
        command = ["ciba-provider", *argv]
        if answer["timed_out"]:
            raise subprocess.TimeoutExpired(command, timeout, answer["stdout"], answer["stderr"])
        return subprocess.CompletedProcess(command, answer["returncode"], answer["stdout"],
                                           answer["stderr"])


ZYGOTE = Zygote()
