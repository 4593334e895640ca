"""docs/deployment.md's production command works as written: the gunicorn line of its first
shell block is started from the installed package (its console script, outside the checkout),
with two workers sharing SQLite and Redis; a device connects over the WebSocket, a client makes
a request, the device approves it, the client gets tokens, whichever worker answers; each
worker has raised its open-file limit for the device sockets."""

from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from tests.support.provider_process import ProviderProcess

from .devices.realworld import Phone, bc_authorize, poll_tokens, seed

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def documented_command() -> list[str]:
    text = (ROOT / "docs" / "deployment.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1).replace("\\\n", " ")
    line = next(line for line in block.splitlines() if line.strip().startswith("gunicorn "))
    return shlex.split(line)


class DocumentedProvider(ProviderProcess):
    def command(self) -> list[str]:
        argv = documented_command()
        argv[0] = shutil.which("gunicorn") or argv[0]  # the installed console script
        argv[argv.index("-b") + 1] = f"127.0.0.1:{self.port}"
        return argv


def test_the_documented_command_serves_devices_and_clients(tmp_path, redis_url):
    argv = documented_command()
    assert argv[:3] == ["gunicorn", "-k", "gevent"] and argv[-1] == "server.wsgi:app"
    op = DocumentedProvider(tmp_path, env={"CIBA_REDIS_URL": redis_url,
                                           "CIBA_SECRET_KEY": "test-secret-key-0123456789"})
    op.cwd = tmp_path  # not the checkout: the installed package serves
    with op:
        # Each worker raised its soft open-file limit to the hard one (one fd per device).
        master = op.process.proc.pid
        deadline = time.monotonic() + 30
        while True:
            workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            if len(workers) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(workers) == 2
        for pid in workers:
            line = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines()
                        if x.startswith("Max open files"))
            soft, hard = line.split()[3:5]
            assert soft == hard, line
        seed(op)
        out = op.cli("devices", "enroll", "alice")
        uri = next(w for w in out.split() if w.startswith("ciba-enroll://"))
        phone = Phone(op.issuer).enroll(uri, base=op.url())
        assert phone.connect()["type"] == "hello"
        r = bc_authorize(op.url(), binding_message="DOCS 1")
        assert r.status_code == 200, r.text
        request = phone.receive_type("login_request")["request"]
        assert phone.decide(request, accept=True).status_code == 200
        assert "access_token" in poll_tokens(op.url(), r.json()["auth_req_id"])
        phone.close()
