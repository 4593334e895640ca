"""Benchmark: many devices connected over WebSockets to the provider under gunicorn's gevent
worker; prints memory per connected device and the delay from bc-authorize to the
``login_request`` event arriving (median, p99).

    python bench/ws_fanout.py --devices 1000 --per-user 2 --samples 300

Setup (not measured): a fresh instance folder with ``devices / per-user`` users, a client, and
``devices`` enrolled devices (each with its own P-256 key, enrolled through the provider's device
service). Then one gunicorn gevent worker is started, every device opens its WebSocket with a
fresh device JWS (this process runs them as greenlets), and the worker's RSS before and after
gives the memory per connected device. Finally ``samples`` requests are made one after another
for random users, timing bc-authorize -> event on the first and on all of that user's devices.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
import websocket  # noqa: E402
from gevent.event import Event  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.admin import ClientSpec, add_client  # noqa: E402
from server.config import Settings  # noqa: E402
from server.devices.setup import install  # noqa: E402
from server.provider import Provider  # noqa: E402
from server.security import hash_password  # noqa: E402
from server.storage import users as user_repo  # noqa: E402
from tests.server.devices.helpers import DeviceKey  # noqa: E402
from tests.support.provider_process import ProviderProcess  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def prepare(instance: Path, issuer: str, n_devices: int, per_user: int) -> dict[str, list[DeviceKey]]:
    provider = Provider(Settings(instance_path=str(instance), issuer=issuer))
    service = install(provider)
    add_client(provider, ClientSpec(client_id="bench", secret=SECRET, name="Bench client",
                                    polling_interval=1))
    password_hash = hash_password("bench-password")  # one scrypt for all users
    users: dict[str, list[DeviceKey]] = {}
    n_users = max(1, n_devices // per_user)
    with provider.db.session() as s:
        rows = [user_repo.add(s, f"user{i:05d}", password_hash, now=time.time())
                for i in range(n_users)]
        ids = [(u.id, u.username) for u in rows]
    for i in range(n_devices):
        user_id, username = ids[i % n_users]
        offer = service.new_enrollment(user_id)
        device = DeviceKey(issuer)
        code = parse_qs(urlsplit(offer.uri).query)["code"][0]
        device.enrolled(service.enroll(device.enroll_body(code, f"bench {i}"), "bench"))
        users.setdefault(username, []).append(device)
    provider.db.dispose()
    return users


class Listener:
    """One device's socket; records when each binding message arrives."""

    def __init__(self, device: DeviceKey, url: str, arrivals: dict, ready: Event) -> None:
        self.device, self.url, self.arrivals, self.ready = device, url, arrivals, ready
        self.ok = False

    def run(self) -> None:
        token = self.device.auth("GET", "/device/ws")
        try:
            ws = websocket.create_connection(self.url, header=[f"Authorization: Device {token}"],
                                             timeout=120)
            hello = json.loads(ws.recv())
            assert hello["type"] == "hello"
            self.ok = True
        finally:
            self.ready.set()
        ws.settimeout(None)
        while True:
            try:
                raw = ws.recv()
            except (OSError, websocket.WebSocketException):  # the server stopped
                return
            if not raw:
                return
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "login_request":
                self.arrivals.setdefault(message["request"]["binding_message"], []).append(now)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--per-user", type=int, default=2, help="devices per user (fan-out)")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--connect-concurrency", type=int, default=100)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.devices * 2 + 200:
        print(f"open-file limit {hard} is too low for {args.devices} devices", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        op = ProviderProcess(Path(tmp), server="gunicorn")
        t = time.perf_counter()
        users = prepare(op.instance, op.issuer, args.devices, args.per_user)
        print(f"setup: {len(users)} users, {args.devices} devices enrolled in "
              f"{time.perf_counter() - t:.1f} s")
        with op:
            worker = worker_pid(op.proc.pid)
            requests.get(op.url("/.well-known/openid-configuration"), timeout=10)
            base_rss, base_threads = rss_kib(worker), threads(worker)
            arrivals: dict[str, list[float]] = {}
            ws_url = op.url("/device/ws").replace("http", "ws", 1)
            listeners, pool = [], gevent.pool.Pool(args.connect_concurrency)
            t = time.perf_counter()
            for devices in users.values():
                for device in devices:
                    ready = Event()
                    listener = Listener(device, ws_url, arrivals, ready)
                    listeners.append(listener)
                    pool.wait_available()
                    gevent.spawn(listener.run)
                    pool.spawn(ready.wait)
            pool.join()
            connected = sum(1 for x in listeners if x.ok)
            connect_s = time.perf_counter() - t
            gevent.sleep(2)  # let the worker settle
            rss, n_threads = rss_kib(worker), threads(worker)
            print(f"connected: {connected}/{len(listeners)} devices in {connect_s:.1f} s")
            print(f"worker RSS: {base_rss / 1024:.1f} MiB before, {rss / 1024:.1f} MiB with "
                  f"{connected} sockets -> {(rss - base_rss) / max(1, connected):.1f} KiB per "
                  f"connected device; worker OS threads: {base_threads} before, {n_threads} after")

            http = requests.Session()
            first, every, bc_times = [], [], []
            names = list(users)
            for i in range(args.samples):
                username = random.choice(names)
                message = f"B{i:05d}"
                t0 = time.perf_counter()
                r = http.post(op.url("/bc-authorize"), auth=("bench", SECRET), timeout=30,
                              data={"scope": "openid", "login_hint": username,
                                    "binding_message": message})
                bc_times.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                want = len(users[username])
                deadline = time.perf_counter() + 10
                while len(arrivals.get(message, ())) < want and time.perf_counter() < deadline:
                    gevent.sleep(0.0005)
                got = arrivals.get(message, [])
                if len(got) < want:
                    print(f"sample {i}: only {len(got)}/{want} devices got the event")
                    continue
                first.append(min(got) - t0)
                every.append(max(got) - t0)
            ms = 1000.0
            print(f"bc-authorize -> login_request over {len(first)} requests "
                  f"({args.per_user} devices per user):")
            print(f"  first device: median {statistics.median(first) * ms:.2f} ms, "
                  f"p99 {pct(first, 99) * ms:.2f} ms")
            print(f"  all devices:  median {statistics.median(every) * ms:.2f} ms, "
                  f"p99 {pct(every, 99) * ms:.2f} ms")
            print(f"  (bc-authorize response itself: median "
                  f"{statistics.median(bc_times) * ms:.2f} ms, p99 {pct(bc_times, 99) * ms:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
