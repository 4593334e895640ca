"""Starting the provider exactly as docs/deployment.md says (issues 9 and 13), with real gunicorn
processes from the installed package (its console script, started outside the checkout): the
documented command serves with two workers on PostgreSQL and Redis from an empty database (one
schema upgrade), each worker raised its open-file limit for the device sockets, a device on the
WebSocket approves a client's request and the client gets tokens whichever worker answers,
/metrics sums every worker; and the settings that would misbehave quietly stop it."""

from __future__ import annotations

import re
import shlex
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.provider_process import Process, ProviderProcess, free_port, wait_http

from .devices.realworld import Phone, bc_authorize, poll_tokens, seed
from .test_operations import metric
from .test_postgres import needs_postgres, pg_schema_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def documented_lines() -> tuple[list[str], str]:
    """The export lines and the gunicorn line of the first sh block in docs/deployment.md."""
    block = re.search(r"```sh\n(.*?)```", (ROOT / "docs" / "deployment.md").read_text(), re.S)
    lines = block.group(1).replace("\\\n", " ").splitlines()
    exports = [re.match(r"export (\w+)=", line).group(1) for line in lines
               if line.startswith("export ")]
    [gunicorn] = [line for line in lines if "gunicorn" in line]
    return exports, gunicorn


def gunicorn_argv(line: str, port: int) -> list[str]:
    argv = shlex.split(line.replace("/opt/ciba/bin/", f"{BIN}/"))
    return [a.replace("0.0.0.0:5000", f"127.0.0.1:{port}") for a in argv]


class DocumentedProvider(ProviderProcess):
    """The documented gunicorn line, on this process's port, started outside the checkout."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cwd = self.workdir  # not the checkout: the installed package serves

    def command(self) -> list[str]:
        return gunicorn_argv(documented_lines()[1], self.port)

    def environ(self) -> dict[str, str]:
        # server.gunicorn_conf makes a fresh metrics folder when none is set; the CLI then runs
        # without one (an empty value would make it write its files into the working folder).
        env = super().environ()
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return env


def worker_pids(master: int, expected: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(workers) == expected or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


@needs_postgres
def test_the_documented_production_command_serves(pg_schema_url, redis_url,  # noqa: F811
                                                  tmp_path):
    exports, line = documented_lines()
    argv = gunicorn_argv(line, 0)
    assert argv[-1] == "server.wsgi:app" and "python:server.gunicorn_conf" in argv
    workers = int(argv[argv.index("-w") + 1])
    assert workers > 1
    values = {"CIBA_DATABASE_URL": pg_schema_url, "CIBA_REDIS_URL": redis_url,
              "CIBA_SECRET_KEY": "s" * 48}
    # CIBA_ISSUER and CIBA_INSTANCE_PATH: this process's address and folder (ProviderProcess).
    assert sorted(exports) == sorted([*values, "CIBA_ISSUER", "CIBA_INSTANCE_PATH"]), \
        "the documented settings changed: update the test"
    op = DocumentedProvider(tmp_path, instance=tmp_path / "ciba", env=values)
    with op.start(timeout=120):
        base = op.url()
        output = op.process.output
        # Each worker raised its soft open-file limit to the hard one (one fd per device).
        pids = worker_pids(op.process.proc.pid, workers)
        assert len(pids) == workers, output
        for pid in pids:
            limit = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines()
                         if x.startswith("Max open files"))
            soft, hard = limit.split()[3:5]
            assert soft == hard, limit
        ready = requests.get(base + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        assert requests.get(base + "/.well-known/openid-configuration",
                            timeout=10).json()["issuer"] == op.issuer
        # A device on the WebSocket approves a client's request; the client gets tokens.
        seed(op)
        uri = next(w for w in op.cli("devices", "enroll", "alice").split()
                   if w.startswith("ciba-enroll://"))
        phone = Phone(op.issuer).enroll(uri, base=base)
        assert phone.connect()["type"] == "hello"
        r = bc_authorize(base, binding_message="DOCS 1")
        assert r.status_code == 200, r.text
        request = phone.receive_type("login_request")["request"]
        assert phone.decide(request, accept=True).status_code == 200
        assert "access_token" in poll_tokens(base, r.json()["auth_req_id"])
        phone.close()
        # /metrics sums every worker's counts.
        before = _jwks_count(base)
        for _ in range(40):  # spread over the workers by the kernel
            assert requests.get(base + "/jwks", timeout=10).status_code == 200
        assert _jwks_count(base) == before + 40
        output = op.process.output
        assert len(set(re.findall(r"Booting worker with pid: (\d+)", output))) == workers
        assert output.count("database schema upgraded from none") <= 1


def _jwks_count(base: str) -> float:
    text = requests.get(base + "/metrics", timeout=10).text
    try:
        return metric(text, "ciba_http_requests_total", endpoint="oidc.jwks", status="200")
    except AssertionError:
        return 0.0


@pytest.mark.parametrize("env, expected", [
    pytest.param({"CIBA_ISSUER": ""}, "CIBA_ISSUER is empty", id="no-issuer"),
    pytest.param({"CIBA_ISSUER": "https://op.example.com", "CIBA_REDIS_URL": ""},
                 "CIBA_REDIS_URL is empty", id="workers-without-redis"),
])
def test_gunicorn_refuses_to_start_and_says_what_to_set(tmp_path, env, expected):
    _, line = documented_lines()
    argv = gunicorn_argv(line, free_port())
    server = Process(argv, env={"CIBA_INSTANCE_PATH": str(tmp_path / "i"), **env},
                     cwd=str(tmp_path))
    try:
        code = server.proc.wait(timeout=120)
        server.stop()
    finally:
        server.kill() if server.group_alive() else None
    assert code != 0
    assert "error: " in server.output and expected in server.output
    assert "set" in server.output.split(expected, 1)[1].lower()


def test_one_worker_without_redis_starts(tmp_path):
    port = free_port()
    argv = [str(BIN / "gunicorn"), "-c", "python:server.gunicorn_conf", "-w", "1",
            "-b", f"127.0.0.1:{port}", "server.wsgi:app"]
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = Process(argv, env={"CIBA_INSTANCE_PATH": str(tmp_path / "i"), "CIBA_REDIS_URL": "",
                                "CIBA_ISSUER": f"http://127.0.0.1:{port}", "TMPDIR": str(temp),
                                "PROMETHEUS_MULTIPROC_DIR": ""}, cwd=str(tmp_path))
    try:
        assert wait_http(f"http://127.0.0.1:{port}/healthz", 90, server).status_code == 200
        assert [p.name[:13] for p in temp.iterdir()] == ["ciba-metrics-"]
    finally:
        server.stop()
    # The metrics folder the settings made is removed when gunicorn exits.
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("named", [False, True], ids=["default", "named"])
def test_no_shared_control_socket(tmp_path, named):
    """gunicorn's control socket sits at one path per user unless named: two masters on one host
    would share it, so none is opened unless CIBA_GUNICORN_CONTROL_SOCKET gives its own path."""
    port, home, path = free_port(), tmp_path / "home", tmp_path / "op.ctl"
    home.mkdir()
    argv = [str(BIN / "gunicorn"), "-c", "python:server.gunicorn_conf", "-w", "1",
            "-b", f"127.0.0.1:{port}", "server.wsgi:app"]
    env = {"CIBA_INSTANCE_PATH": str(tmp_path / "i"), "CIBA_REDIS_URL": "", "HOME": str(home),
           "XDG_RUNTIME_DIR": "", "CIBA_ISSUER": f"http://127.0.0.1:{port}"}
    if named:
        env["CIBA_GUNICORN_CONTROL_SOCKET"] = str(path)
    server = Process(argv, env=env, cwd=str(tmp_path))
    try:
        assert wait_http(f"http://127.0.0.1:{port}/healthz", 90, server).status_code == 200
        assert not (home / ".gunicorn").exists()
        assert path.is_socket() == named
    finally:
        server.stop()
