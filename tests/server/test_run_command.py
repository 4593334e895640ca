"""``ciba-provider run`` (issue 9): the one-host production command of docs/deployment.md, from
the installed package's console script, started outside the checkout on the default SQLite
database and a Redis server. By default granian answers HTTP and gunicorn's gevent worker holds
the device WebSockets: a device connected to the device address gets the login request a client
made over HTTP, approves it, and the client's poll over HTTP gets tokens; /metrics sums both
servers; stopping the launcher stops both. ``--server gunicorn``: gevent workers serve HTTP and
device sockets on both addresses, joined by the Redis bus. Without Redis it refuses to start and
says what to set; a server that cannot start stops the launcher with a failure status."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import sys
from pathlib import Path

import pytest
import requests
import websocket

from server.config import Settings
from server.launcher import commands, preflight, usable_cpus
from server.startup import StartupError
from tests.support.provider_process import Process, ProviderProcess, free_port

from .devices.realworld import Phone, bc_authorize, poll_tokens, seed
from .test_operations import metric

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def documented_run_line() -> str:
    """The ``ciba-provider run`` line of docs/deployment.md's one-host section."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "docs" / "deployment.md").read_text(), re.S)
    [line] = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()
              if "ciba-provider run" in line]
    return line


def run_argv(http_port: int, device_port: int, *extra: str) -> list[str]:
    argv = shlex.split(documented_run_line().replace("/opt/ciba/bin/", f"{BIN}/"))
    return [a.replace("0.0.0.0:5000", f"127.0.0.1:{http_port}")
            .replace("0.0.0.0:5001", f"127.0.0.1:{device_port}") for a in argv] + list(extra)


class RunCommand(ProviderProcess):
    """The documented launcher with ``extra`` arguments; ``port`` is its HTTP address,
    ``device_port`` the sockets' (``--device-bind``)."""

    def __init__(self, *args, extra: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.device_port = free_port()
        self.extra = list(extra)
        self.cwd = self.workdir  # not the checkout: the installed package serves

    def command(self) -> list[str]:
        return run_argv(self.port, self.device_port, *self.extra)

    def environ(self) -> dict[str, str]:
        env = super().environ()
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the launcher makes one for every server
        return env


def started(op: RunCommand, http: str, layout: str) -> Phone:
    """Check the launcher's layout line and Redis, seed alice and enroll her phone."""
    assert layout in op.output, op.output[-3000:]
    ready = requests.get(http + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok", ready.text
    seed(op)
    uri = next(w for w in op.cli("devices", "enroll", "alice").split()
               if w.startswith("ciba-enroll://"))
    return Phone(op.issuer).enroll(uri, base=http)


def metrics_sum_and_sigterm_stops(op: RunCommand, bases: list[str], metrics_base: str) -> None:
    """A request to each of ``bases`` is counted in ``metrics_base``'s /metrics, whichever
    process answered; SIGTERM to the launcher alone (as a supervisor stops it) stops all."""
    for base in bases:
        assert requests.get(base + "/jwks", timeout=10).status_code == 200
    text = requests.get(metrics_base + "/metrics", timeout=10).text
    assert metric(text, "ciba_http_requests_total", endpoint="oidc.jwks",
                  status="200") == len(bases)
    os.kill(op.process.proc.pid, signal.SIGTERM)
    assert op.process.proc.wait(timeout=90) == 0, op.output[-3000:]
    assert not op.process.group_alive(), op.output[-3000:]


def test_run_with_gunicorn_serves_everything_from_gevent_workers(redis_url, tmp_path):
    # The documented command line, with gunicorn: both addresses serve HTTP and sockets.
    op = RunCommand(tmp_path, instance=tmp_path / "ciba", extra=("--server", "gunicorn"),
                    env={"CIBA_REDIS_URL": redis_url, "CIBA_SECRET_KEY": "s" * 48})
    with op.start(timeout=120):
        http, second = op.url(), f"http://127.0.0.1:{op.device_port}"
        for base in (http, second):
            assert requests.get(base + "/healthz", timeout=30).headers.get("Server") == "gunicorn"
        # One gevent worker per core this process may use (here no container quota).
        phone = started(op, http, f"(gunicorn gevent, {usable_cpus()} workers)")
        # A socket on the device address, where the load balancer of the default layout sends it.
        assert phone.connect(base=second)["type"] == "hello"
        r = bc_authorize(http, binding_message="RUN 0")
        assert r.status_code == 200, r.text
        assert phone.receive_type("login_request", timeout=30)["request"][
            "binding_message"] == "RUN 0"
        phone.close()
        # The socket on the main address, beside plain HTTP. Each bc-authorize is a new
        # connection, so the workers share them; the one holding the socket hears of the
        # others' requests over the Redis bus.
        assert phone.connect(base=http)["type"] == "hello"
        responses = [bc_authorize(http, binding_message=f"RUN {n}") for n in range(1, 5)]
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        seen, wanted = {}, {"RUN 1", "RUN 2", "RUN 3", "RUN 4"}
        while not wanted <= set(seen):  # RUN 0, still pending, comes again on the new socket
            request = phone.receive_type("login_request", timeout=30)["request"]
            seen[request["binding_message"]] = request
        assert set(seen) <= wanted | {"RUN 0"}
        assert phone.decide(seen["RUN 3"], accept=True, base=http).status_code == 200
        assert "access_token" in poll_tokens(http, responses[2].json()["auth_req_id"])
        phone.close()
        # /metrics on either address sums every worker; SIGTERM stops everything.
        metrics_sum_and_sigterm_stops(op, [http, second, http], second)


def test_run_serves_http_and_device_sockets_from_two_servers(redis_url, tmp_path):
    line = documented_run_line()
    assert "--bind 0.0.0.0:5000" in line and "--device-bind 0.0.0.0:5001" in line
    op = RunCommand(tmp_path, instance=tmp_path / "ciba",
                    env={"CIBA_REDIS_URL": redis_url, "CIBA_SECRET_KEY": "s" * 48})
    with op.start(timeout=120):
        http, devices = op.url(), f"http://127.0.0.1:{op.device_port}"
        requests.get(devices + "/healthz", timeout=30).raise_for_status()
        # Two servers: granian on the HTTP address, gunicorn (gevent) on the device address.
        assert requests.get(devices + "/healthz", timeout=10).headers.get("Server") == "gunicorn"
        assert "gunicorn" not in requests.get(http + "/healthz", timeout=10).headers.get(
            "Server", "")
        # One HTTP process per core this process may use (here no container quota).
        phone = started(op, http, f"(granian, {usable_cpus()} workers)")
        # A socket sent to the HTTP address (a load balancer not routing /device/ws) is refused
        # with a message that says where it belongs, not a hang or a 500.
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            phone.connect(base=http)
        assert refused.value.status_code == 501
        assert b"route /device/ws" in (refused.value.resp_body or b"")
        # The device's socket on the device server; the client's requests over HTTP.
        assert phone.connect(base=devices)["type"] == "hello"
        r = bc_authorize(http, binding_message="RUN 1")
        assert r.status_code == 200, r.text
        request = phone.receive_type("login_request", timeout=30)["request"]
        assert request["binding_message"] == "RUN 1"
        assert phone.decide(request, accept=True, base=http).status_code == 200
        assert "access_token" in poll_tokens(http, r.json()["auth_req_id"])
        phone.close()
        # /metrics on either address sums both servers' processes; SIGTERM stops both.
        metrics_sum_and_sigterm_stops(op, [http, devices], http)


def test_run_without_redis_refuses_and_says_what_to_set(tmp_path):
    argv = run_argv(free_port(), free_port())
    server = Process(argv, env={"CIBA_INSTANCE_PATH": str(tmp_path / "i"), "CIBA_REDIS_URL": "",
                                "CIBA_ISSUER": "https://op.example.com"}, cwd=str(tmp_path))
    try:
        code = server.proc.wait(timeout=120)
    finally:
        server.kill() if server.group_alive() else None
    assert code != 0
    assert "error: " in server.output and "CIBA_REDIS_URL is empty" in server.output
    assert "set CIBA_REDIS_URL=" in server.output


def test_one_gunicorn_worker_needs_no_redis(tmp_path):
    settings = Settings(instance_path=str(tmp_path), issuer="https://op.example.com",
                        secret_key="s" * 48, redis_url="")
    preflight(settings, 1)  # one gunicorn worker: nothing to join
    with pytest.raises(StartupError, match="CIBA_REDIS_URL is empty"):
        preflight(settings, 2)
    [gunicorn] = commands("0.0.0.0:5000", None, 1, "gunicorn")
    assert gunicorn[-5:] == ["-w", "1", "-b", "0.0.0.0:5000", "server.wsgi:app"]
    assert "python:server.gunicorn_conf" in gunicorn
    [both] = commands("0.0.0.0:5000", "0.0.0.0:5001", 3, "gunicorn")
    http, devices = commands("0.0.0.0:5000", "0.0.0.0:5001", 2)  # granian, the default
    assert "granian" in http and devices[-5:] == ["-w", "1", "-b", "0.0.0.0:5001",
                                                  "server.wsgi:app"]
    assert both[-7:] == ["-w", "3", "-b", "0.0.0.0:5000", "-b", "0.0.0.0:5001", "server.wsgi:app"]
    with pytest.raises(StartupError, match="--device-bind"):
        commands("0.0.0.0:5000", None, 2, "granian")
    with pytest.raises(StartupError, match="is not HOST:PORT"):
        commands("0.0.0.0:5000", "5001", 2, "gunicorn")


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_run_stops_when_a_server_cannot_start(redis_url, tmp_path, server):
    """A server that exits (here: the second address is taken) stops the others and the
    launcher, with a failure status, so a supervisor restarts the whole."""
    http_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        argv = run_argv(http_port, taken.getsockname()[1], "--server", server)
        proc = Process(argv, cwd=str(tmp_path), env={
            "CIBA_INSTANCE_PATH": str(tmp_path / "i"), "CIBA_REDIS_URL": redis_url,
            "CIBA_ISSUER": f"http://127.0.0.1:{http_port}"})
        try:
            code = proc.proc.wait(timeout=150)
        finally:
            proc.kill() if proc.group_alive() else None
    assert code != 0, proc.output[-3000:]
    assert not proc.group_alive(), proc.output[-3000:]


@pytest.mark.parametrize("files, expected", [
    pytest.param({"cpu.max": "200000 100000\n"}, 2, id="v2-two-cpus"),
    pytest.param({"cpu.max": "150000 100000\n"}, 2, id="v2-rounds-up"),
    pytest.param({"cpu.max": "50000 100000\n"}, 1, id="v2-half-a-cpu"),
    pytest.param({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1,
                 id="v1-one-cpu"),
])
def test_default_workers_follow_the_container_cpu_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cpus(str(tmp_path)) == min(expected, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("files", [{}, {"cpu.max": "max 100000\n"},
                                   {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}],
                         ids=["no-cgroup", "v2-no-quota", "v1-no-quota"])
def test_without_a_quota_default_workers_are_the_usable_cores(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cpus(str(tmp_path)) == len(os.sched_getaffinity(0))
