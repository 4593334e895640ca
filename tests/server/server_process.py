"""A real ``ciba-provider serve`` process on 127.0.0.1 for end-to-end and interop tests.

Its combined output is kept line by line (and in ``log_path``) so a test can read what an
operator would see, e.g. the console channel's "Approve or deny at: URL" line.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

APPROVAL_LINE = re.compile(r"Login request for (\S+) .*Approve or deny at: (\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProviderProcess:
    def __init__(self, instance: Path, env: dict[str, str] | None = None) -> None:
        self.instance = Path(instance)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env.pop("CIBA_ISSUER", None)
        self.log_path = self.instance.parent / f"provider-{self.port}.log"
        self.lines: list[str] = []
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    # -- the command line, as an operator types it ---------------------------------------------
    def cli(self, *argv: str) -> str:
        result = subprocess.run(["ciba-provider", *argv, "--instance", str(self.instance)],
                                capture_output=True, text=True, env=self.env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def cli_json(self, *argv: str):
        return json.loads(self.cli(*argv))

    # -- the server ----------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "ProviderProcess":
        self._proc = subprocess.Popen(
            ["ciba-provider", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--instance", str(self.instance)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("provider exited:\n" + self.output())
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration",
                                timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("provider did not answer in time:\n" + self.output())

    def _read(self) -> None:
        assert self._proc and self._proc.stdout
        with open(self.log_path, "a") as log:
            for line in self._proc.stdout:
                self.lines.append(line.rstrip("\n"))
                log.write(line)
                log.flush()

    def output(self) -> str:
        return "\n".join(self.lines)

    def approval_link(self, username: str, after: int = 0, timeout: float = 10.0) -> str:
        """The newest console link logged for ``username`` among lines from index ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in reversed(self.lines[after:]):
                match = APPROVAL_LINE.search(line)
                if match and match.group(1) == username:
                    return match.group(2)
            time.sleep(0.05)
        raise AssertionError(f"no approval link for {username} in:\n{self.output()}")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if self._reader:
            self._reader.join(timeout=5)
