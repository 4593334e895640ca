"""Starting the provider as docs/deployment.md says, with real gunicorn processes (issue 13):
the documented command serves with several workers on PostgreSQL and Redis from an empty
database, /metrics sums every worker, and the settings that would misbehave quietly stop it."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest
import requests

from tests.support.provider_process import Process, free_port, wait_http

from .test_operations import metric
from .test_postgres import needs_postgres, pg_schema_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("CIBA_TEST_REDIS_URL", "")


def documented_lines() -> tuple[list[str], str]:
    """The export lines and the gunicorn line of the first sh block in docs/deployment.md."""
    block = re.search(r"```sh\n(.*?)```", (ROOT / "docs" / "deployment.md").read_text(), re.S)
    lines = block.group(1).splitlines()
    exports = [re.match(r"export (\w+)=", line).group(1) for line in lines
               if line.startswith("export ")]
    [gunicorn] = [line for line in lines if "gunicorn" in line]
    return exports, gunicorn


def gunicorn_argv(line: str, port: int) -> list[str]:
    argv = shlex.split(line.replace("/opt/ciba/bin/", f"{BIN}/"))
    return [a.replace("0.0.0.0:5000", f"127.0.0.1:{port}") for a in argv]


@needs_postgres
@pytest.mark.skipif(not REDIS_URL, reason="no Redis server (CIBA_TEST_REDIS_URL)")
def test_the_documented_production_command_serves(pg_schema_url, tmp_path):  # noqa: F811
    exports, line = documented_lines()
    port = free_port()
    values = {"CIBA_ISSUER": f"http://127.0.0.1:{port}", "CIBA_DATABASE_URL": pg_schema_url,
              "CIBA_REDIS_URL": REDIS_URL, "CIBA_SECRET_KEY": "s" * 48,
              "CIBA_INSTANCE_PATH": str(tmp_path / "ciba")}
    assert sorted(exports) == sorted(values), "the documented settings changed: update the test"
    argv = gunicorn_argv(line, port)
    assert "-w" in argv and int(argv[argv.index("-w") + 1]) > 1
    env = {**values, "PROMETHEUS_MULTIPROC_DIR": ""}
    server = Process(argv, env=env, cwd=str(tmp_path), log_path=tmp_path / "gunicorn.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", timeout=90, process=server)
        ready = requests.get(base + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        assert requests.get(base + "/.well-known/openid-configuration",
                            timeout=10).json()["issuer"] == values["CIBA_ISSUER"]
        before = _jwks_count(base)
        for _ in range(40):  # spread over the workers by the kernel
            assert requests.get(base + "/jwks", timeout=10).status_code == 200
        assert _jwks_count(base) == before + 40  # every worker's count, summed
        pids = set(re.findall(r"Booting worker with pid: (\d+)", server.output))
        assert len(pids) == int(argv[argv.index("-w") + 1]), server.output
        assert server.output.count("database schema upgraded from none") <= 1
    finally:
        server.stop()


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
    server = Process(argv, env={"CIBA_INSTANCE_PATH": str(tmp_path / "i"), "CIBA_REDIS_URL": "",
                                "CIBA_ISSUER": f"http://127.0.0.1:{port}"}, cwd=str(tmp_path))
    try:
        assert wait_http(f"http://127.0.0.1:{port}/healthz", 90, server).status_code == 200
    finally:
        server.stop()
