"""The servers bench/side_by_side.py compares: the peer (node-oidc-provider), the floor (a bare
Flask endpoint) and this provider, each started the way docs/deployment.md runs it.

Every target offers the same shape: ``bc_url``, ``token_url``, client credentials for
``client_secret_basic``, a way to approve a request, and the process ids whose RSS and CPU are
read. Setup (users, clients, a device) is done before the server starts and is not measured.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.provider_process import Process, free_port, wait_http  # noqa: E402

CLIENT_ID, CLIENT_SECRET = "kiosk", "kiosk-secret"
APPROVAL_TOKEN = "bench-approval-token-0123456789"
BC_BODY = "scope=openid&login_hint=alice"
#: The benchmark piles thousands of pending requests on one user and one client, far past issue
#: 13's pending caps (10 per user, 1000 per client; 429 beyond), so they are off here as the
#: peer has none; profile_hot_paths.py measures what the caps' two counts cost near a cap.
NO_CAPS = {"CIBA_MAX_PENDING_PER_USER": "0", "CIBA_MAX_PENDING_PER_CLIENT": "0"}


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


#: The gunicorn worker class of the floor and of ours: server.gunicorn_conf's (one send per
#: response), so that the floor runs under the very same server as ours.
WORKER_CLASS = "server.gunicorn_worker.GeventWorker"


def server_command(server: str, workers: int, port: int, app: str, cwd: Path,
                   worker_class: str = WORKER_CLASS) -> list[str]:
    """The same server for the floor and for ours (docs/deployment.md's command)."""
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers",
                str(workers), "--host", "127.0.0.1", "--port", str(port), "--no-ws",
                "--working-dir", str(cwd), app]
    return [sys.executable, "-m", "gunicorn", "-k", worker_class, "-w", str(workers),
            "--worker-connections", "10000", "-b", f"127.0.0.1:{port}", "--chdir", str(cwd),
            # gunicorn 25.1+ opens a control socket at one per-user path: a second benchmark
            # would take it over (server.gunicorn_conf turns it off the same way).
            "--graceful-timeout", "3", "--no-control-socket", app]


@dataclass
class Target:
    name: str
    base: str = ""
    bc_path: str = "/bc-authorize"
    token_path: str = "/token"
    approve: dict | None = None  # loadgen's approve spec; None: no flows (the floor)
    process: Process | None = None
    extra: list[Process] = field(default_factory=list)

    @property
    def bc_url(self) -> str:
        return self.base + self.bc_path

    @property
    def token_url(self) -> str:
        return self.base + self.token_path

    def pids(self) -> list[int]:
        """The server's processes: the started one and all its descendants."""
        roots = [p.proc.pid for p in [self.process, *self.extra] if p is not None]
        found, todo = [], list(roots)
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    def pending_ids(self, n: int) -> list[str]:
        """``n`` fresh pending auth_req_ids for the token-poll metric."""
        http = requests.Session()
        ids = []
        for _ in range(n):
            r = http.post(self.bc_url, data=BC_BODY, timeout=30, headers={
                "Authorization": basic_auth(),
                "Content-Type": "application/x-www-form-urlencoded"})
            r.raise_for_status()
            ids.append(r.json()["auth_req_id"])
        return ids

    def stop(self) -> None:
        for p in [self.process, *self.extra]:
            if p is not None:
                p.stop(10)


# -- the peer --------------------------------------------------------------------------------
def prepare_peer(peer_dir: Path, cache_dir: Path) -> Path:
    """Copy the peer to ``cache_dir/peer`` and ``npm install`` there when its package.json
    changed; the peer's code and node_modules never enter this repository."""
    dest = cache_dir / "peer"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("provider.mjs", "package.json"):
        shutil.copy2(peer_dir / name, dest / name)
    stamp = hashlib.sha256((dest / "package.json").read_bytes()).hexdigest()
    marker = dest / "node_modules" / ".ciba-bench-installed"
    if not marker.exists() or marker.read_text() != stamp:
        print(f"npm install in {dest} ...", file=sys.stderr)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=dest, check=True,
                       stdout=subprocess.DEVNULL)
        marker.write_text(stamp)
    return dest


def start_peer(peer: Path, log_dir: Path) -> Target:
    """Start the peer on two free ports: its provider.mjs listens on 3000 and 3001, so the copy
    run here has them replaced (two benchmarks at once would otherwise collide)."""
    port, admin_port = free_port(), free_port()
    source = (peer / "provider.mjs").read_text()
    for fixed, free in (("3000", port), ("3001", admin_port)):
        if source.count(fixed) < 2:
            raise RuntimeError(f"the peer's provider.mjs no longer names port {fixed}")
        source = source.replace(f"127.0.0.1:{fixed}", f"127.0.0.1:{free}")
        source = source.replace(f".listen({fixed},", f".listen({free},")
    script = peer / f"provider-{port}.mjs"
    script.write_text(source)
    base = f"http://127.0.0.1:{port}"
    try:
        proc = Process(["node", script.name], cwd=str(peer), log_path=log_dir / "peer.log")
        wait_http(base + "/.well-known/openid-configuration", 30, proc)
    finally:
        script.unlink(missing_ok=True)  # node has read it by the time it answers
    return Target("peer", base, bc_path="/backchannel",
                  approve={"kind": "peer", "url": f"http://127.0.0.1:{admin_port}/approve"},
                  process=proc)


# -- the floor -------------------------------------------------------------------------------
def start_floor(server: str, log_dir: Path, worker_class: str = WORKER_CLASS,
                name: str = "floor") -> Target:
    port = free_port()
    proc = Process(server_command(server, 1, port, "floor_app:app", ROOT / "bench", worker_class),
                   log_path=log_dir / f"{name}.log")
    base = f"http://127.0.0.1:{port}"
    wait_http_post(base + "/token", proc)
    return Target(name, base, process=proc)


def wait_http_post(url: str, proc: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.post(url, data="a=b", timeout=2, headers={
                "Content-Type": "application/x-www-form-urlencoded"})
            return
        except requests.RequestException:
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer:\n{proc.output[-3000:]}")
            time.sleep(0.1)


# -- ours ------------------------------------------------------------------------------------
def prepare_ours(instance: Path, issuer: str, database_url: str) -> None:
    """A fresh instance: alice with one enrolled device (her requests go to the WebSocket
    channel, as in production), and the kiosk client of the peer."""
    from joserfc.jwk import ECKey

    from server.admin import ClientSpec, add_client, add_user
    from server.config import Settings
    from server.wiring import build_provider

    provider = build_provider(Settings(instance_path=str(instance), issuer=issuer,
                                 database_url=database_url, secret_key="bench-secret-key"))
    service = provider.devices
    user = add_user(provider, "alice", "alice-password", name="Alice Example",
                    email="alice@example.com")
    add_client(provider, ClientSpec(client_id=CLIENT_ID, secret=CLIENT_SECRET, name="Kiosk"))
    offer = service.new_enrollment(user.id)
    code = parse_qs(urlsplit(offer.uri).query)["code"][0]
    jwk = ECKey.generate_key("P-256").as_dict(private=False)
    service.enroll({"code": code, "jwk": jwk, "display_name": "bench"}, "bench")
    provider.db.dispose()


def start_ours(name: str, server: str, workers: int, instance: Path, database_url: str,
               redis_url: str, log_dir: Path, extra_env: dict | None = None,
               worker_class: str = WORKER_CLASS, root: Path = ROOT) -> Target:
    """This provider from the checkout at ``root`` (another one: a before/after A/B)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"CIBA_INSTANCE_PATH": str(instance), "CIBA_ISSUER": base,
           "CIBA_DATABASE_URL": database_url, "CIBA_SECRET_KEY": "bench-secret-key",
           "CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL_TOKEN, "CIBA_REDIS_URL": redis_url,
           **NO_CAPS, **(extra_env or {})}
    proc = Process(server_command(server, workers, port, "server.wsgi:app", root, worker_class),
                   env=env, cwd=str(root), log_path=log_dir / f"{name}.log")
    wait_http(base + "/.well-known/openid-configuration", 60, proc)
    return Target(name, base, approve={"kind": "ours", "url": base + "/testing/ciba-approval",
                                       "token": APPROVAL_TOKEN}, process=proc)


def start_ours_run(name: str, workers: int, instance: Path, database_url: str, redis_url: str,
                   log_dir: Path, server: str = "granian") -> Target:
    """docs/deployment.md's one-host command, ``ciba-provider run`` with ``workers`` processes:
    granian for HTTP (measured here) beside the gunicorn device process (the default), or
    ``server="gunicorn"``: gevent workers serving everything."""
    port, device_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"CIBA_INSTANCE_PATH": str(instance), "CIBA_ISSUER": base,
           "CIBA_DATABASE_URL": database_url, "CIBA_SECRET_KEY": "bench-secret-key",
           "CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL_TOKEN, "CIBA_REDIS_URL": redis_url,
           **NO_CAPS}
    argv = [str(Path(sys.executable).parent / "ciba-provider"), "run", "--bind",
            f"127.0.0.1:{port}", "--device-bind", f"127.0.0.1:{device_port}",
            "--workers", str(workers), "--server", server]
    proc = Process(argv, env=env, cwd=str(ROOT), log_path=log_dir / f"{name}.log")
    wait_http(base + "/.well-known/openid-configuration", 90, proc)
    return Target(name, base, approve={"kind": "ours", "url": base + "/testing/ciba-approval",
                                       "token": APPROVAL_TOKEN}, process=proc)


def reset_postgres_schema(url: str, schema: str) -> str:
    """A fresh schema for the benchmark; returns the SQLAlchemy URL that uses it."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-file limit towards ``wanted`` (capped by the hard limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, wanted), hard)
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def loadgen(peer: Path, spec: dict) -> dict:
    done = subprocess.run(["node", str(ROOT / "bench" / "loadgen.mjs"), str(peer),
                           json.dumps(spec)], capture_output=True, text=True,
                          timeout=spec["duration"] * 3 + 60)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
