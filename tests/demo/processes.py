"""Real processes for the demo tests: start a command in its own process group, collect its
output lines, wait for a line or a URL, stop it with SIGINT like Ctrl-C, and check that nothing
of its group is left behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def console_script(name: str, module: str) -> list[str]:
    """The installed console script (as the README says), or ``python -m`` in a bare checkout."""
    path = shutil.which(name)
    return [path] if path else [sys.executable, "-m", module]


class Process:
    def __init__(self, argv: list[str], env: dict | None = None, cwd: str | None = None) -> None:
        self.argv = argv
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, cwd=cwd,
            start_new_session=True)
        self.pgid = self.proc.pid
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0, start: int = 0) -> re.Match:
        """The first output line from index ``start`` on matching the regex ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[start:]:
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


def wait_http(url: str, timeout: float = 20.0, process: Process | None = None) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code < 500:
                return response
        except requests.RequestException:
            pass
        if process is not None and process.proc.poll() is not None:
            raise AssertionError(f"process exited before {url} answered:\n{process.output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer in {timeout} s")
        time.sleep(0.1)
