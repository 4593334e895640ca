"""Benchmark: many devices connected over WebSockets to one provider process (gunicorn's gevent
worker): how long N devices take to connect all at once (as after a provider restart), memory
per connected device, and the delay from bc-authorize to the ``login_request`` at the device.

    python bench/ws_fanout.py --devices 10000 --per-user 2 --samples 300 --clients 4

Setup (not measured): a fresh instance with ``devices / per-user`` users, a client, and the
devices (each its own P-256 key, stored as enrollment stores it). One gunicorn gevent worker
starts; ``--clients`` client processes (gevent, each signing a fresh device JWS per connect)
open their share of the sockets at once, ``--connect-concurrency`` in flight per process. The
worker's RSS before and after gives the memory per socket. Then ``samples`` requests are made
one after another for random users, timing bc-authorize -> event on the first and on all of
that user's devices (perf_counter is one clock for all processes on Linux).

The soft open-file limit is raised to the hard limit here and in the provider (server/wsgi.py);
the provider needs about one descriptor per device, each client process one per its devices.

``--client-nice N`` runs the client processes at a lower priority, so that the provider is not
handed a fifth of the two cores by the scheduler's fairness to five busy processes (the phones of a
real storm are not on the provider's cores); the client processes' CPU is printed per process.

``--pin-cpus`` confines the provider worker's event loop to the first CPU and the client processes
to the others, as on a host whose phones are elsewhere: without it, the worker of a storm waits on the
run queue behind the clients a fifth of the time while the other core idles (the scheduler wakes
it where it last ran). The time the worker spent runnable but waiting is printed either way
(``/proc/<pid>/task/*/schedstat``).

``--device lean`` plays the devices with bench/lean_device.py (same protocol, a third of the
client CPU); ``CIBA_DEVICE_LANE=false`` in the environment measures the Flask path of /device/ws.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-0123456789abcdef"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def worker_pid(master: int) -> int:
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def prepare(instance: Path, issuer: str, n_devices: int, per_user: int) -> list[dict]:
    """Users, the client and the devices; returns [{username, device_id, jwk (private)}]."""
    import pyotp
    from joserfc.jwk import ECKey

    from server.admin import ClientSpec, add_client
    from server.config import Settings
    from server.wiring import build_provider
    from server.security import hash_password, new_id
    from server.storage import devices as device_repo, users as user_repo
    from server.storage.models import Device

    provider = build_provider(Settings(instance_path=str(instance), issuer=issuer))
    add_client(provider, ClientSpec(client_id="bench", secret=SECRET, name="Bench client",
                                    polling_interval=1))
    password_hash = hash_password("bench-password")  # one scrypt for all users
    n_users = max(1, n_devices // per_user)
    now = time.time()
    out = []
    with provider.db.session() as s:
        users = [user_repo.add(s, f"user{i:05d}", password_hash, now=now) for i in range(n_users)]
        for i in range(n_devices):
            user = users[i % n_users]
            key = ECKey.generate_key("P-256")
            device_id = new_id(32)
            public = {k: v for k, v in key.as_dict(private=False).items()
                      if k in ("kty", "crv", "x", "y")}
            device_repo.add(s, Device(id=device_id, user_id=user.id, display_name=f"bench {i}",
                                      public_jwk=json.dumps(public), push_channel="websocket",
                                      totp_secret=provider.box.seal(pyotp.random_base32(32)),
                                      created_at=now))
            out.append({"username": user.username, "device_id": device_id,
                        "jwk": key.as_dict(private=True)})
    provider.db.dispose()
    return out


# -- client process ------------------------------------------------------------------------
def client_main(spec_path: str) -> int:
    """One client process: open every socket of its share, then report arrivals on stdout."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import gevent.lock
    import gevent.socket
    import websocket
    from joserfc.jwk import ECKey

    from tests.server.devices.helpers import DeviceKey

    spec = json.loads(Path(spec_path).read_text())
    lock = threading.Lock()
    connecting = gevent.lock.BoundedSemaphore(spec["concurrency"])

    def emit(*parts) -> None:
        with lock:
            sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
            sys.stdout.flush()

    def run(entry: dict) -> None:
        if spec["device"] == "lean":
            return run_lean(entry)
        device = DeviceKey(spec["issuer"], key=ECKey.import_key(entry["jwk"]),
                           device_id=entry["device_id"])
        with connecting:  # at most ``concurrency`` handshakes in flight; sockets stay open
            token = device.auth("GET", "/device/ws")
            try:
                ws = websocket.create_connection(spec["url"], timeout=120,
                                                 header=[f"Authorization: Device {token}"])
                hello = json.loads(ws.recv())
                assert hello["type"] == "hello"
            except Exception as exc:
                emit("FAIL", type(exc).__name__)
                return
        emit("UP", time.perf_counter())
        ws.settimeout(None)
        while True:
            try:
                raw = ws.recv()
            except (OSError, websocket.WebSocketException):
                return
            if not raw:
                return
            at = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "login_request":
                emit("ARR", message["request"]["binding_message"], at)

    def run_lean(entry: dict) -> None:
        from bench.lean_device import LeanDevice

        device = LeanDevice(spec["issuer"], spec["url"], entry["jwk"], entry["device_id"])
        with connecting:
            try:
                device.connect(gevent.socket, timeout=120)
            except Exception as exc:
                emit("FAIL", type(exc).__name__)
                return
        emit("UP", time.perf_counter())
        device.sock.settimeout(None)
        while (message := device.message()) is not None:
            if message.get("type") == "login_request":
                emit("ARR", message["request"]["binding_message"], time.perf_counter())

    sys.stdin.readline()  # GO
    greenlets = [gevent.spawn(run, entry) for entry in spec["devices"]]
    gevent.joinall(greenlets)
    return 0


class Client:
    """A client process seen from the parent: counts sockets up, collects arrivals."""

    def __init__(self, spec_path: Path, nice: int = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--client", str(spec_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=str(ROOT), preexec_fn=(lambda: os.nice(nice)) if nice
                                     else None)
        self.up: list[float] = []
        self.failed: list[str] = []
        self.arrivals: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            kind, *rest = line.split()
            with self.lock:
                if kind == "UP":
                    self.up.append(float(rest[0]))
                elif kind == "FAIL":
                    self.failed.append(rest[0])
                elif kind == "ARR":
                    self.arrivals.setdefault(rest[0], []).append(float(rest[1]))

    def go(self) -> None:
        self.proc.stdin.write("GO\n")
        self.proc.stdin.flush()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--per-user", type=int, default=2, help="devices per user (fan-out)")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--clients", type=int, default=4, help="client processes")
    ap.add_argument("--connect-concurrency", type=int, default=500, help="per client process")
    ap.add_argument("--profile", metavar="FILE",
                    help="py-spy record the worker while devices connect (raw stacks to FILE)")
    ap.add_argument("--device", choices=["app", "lean"], default="app",
                    help="the client processes' device: joserfc + websocket-client as the app "
                         "and the tests, or bench/lean_device.py (same protocol, less CPU)")
    ap.add_argument("--client-nice", type=int, default=0, metavar="N",
                    help="run the client processes at nice N (the provider keeps its priority, "
                         "as on a host whose phones are elsewhere)")
    ap.add_argument("--pin-cpus", action="store_true",
                    help="the provider worker's loop on CPU 0, the client processes on the others")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the children
    if args.client:
        return client_main(args.client)
    need = args.devices + 200  # the provider's share; each client needs devices/clients + 50
    if hard < need:
        print(f"the hard open-file limit {hard} is below the {need} the provider needs for "
              f"{args.devices} devices", file=sys.stderr)
        return 2
    import requests

    from tests.support.provider_process import ProviderProcess

    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        op = ProviderProcess(Path(tmp), server="gunicorn")
        t = time.perf_counter()
        devices = prepare(op.instance, op.issuer, args.devices, args.per_user)
        per_user: dict[str, int] = {}
        for d in devices:
            per_user[d["username"]] = per_user.get(d["username"], 0) + 1
        print(f"setup: {len(per_user)} users, {len(devices)} devices in "
              f"{time.perf_counter() - t:.1f} s; open-file limit {hard}; devices: {args.device}; "
              f"device lane (CIBA_DEVICE_LANE): {os.environ.get('CIBA_DEVICE_LANE', 'true')}",
              flush=True)
        with op:
            worker = worker_pid(op.process.proc.pid)
            requests.get(op.url("/.well-known/openid-configuration"), timeout=10)
            base_rss, base_threads = rss_kib(worker), threads(worker)
            ws_url = op.url("/device/ws").replace("http", "ws", 1)
            clients = []
            for i in range(args.clients):
                spec = Path(tmp) / f"client{i}.json"
                spec.write_text(json.dumps({"issuer": op.issuer, "url": ws_url,
                                            "concurrency": args.connect_concurrency,
                                            "device": args.device,
                                            "devices": devices[i::args.clients]}))
                clients.append(Client(spec, args.client_nice))
            if args.pin_cpus:
                pin(worker, clients)
            time.sleep(3)  # let the client processes import and get ready
            # --gil: only samples holding the GIL, so time a descheduled worker spends in a
            # syscall (the machine is shared) is not counted as work.
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(worker), "--format", "raw",
                                    "--gil", "--rate", "200", "-o", args.profile],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) \
                if args.profile else None
            cpu0, sys0 = cpu_seconds(worker), cpu_seconds(worker, kernel_only=True)
            loop0 = cpu_seconds(worker, thread=worker)
            client_cpu0 = [cpu_seconds(c.proc.pid) for c in clients]
            waited0 = run_queue_seconds(worker)
            t0 = time.perf_counter()
            for c in clients:
                c.go()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = sum(len(c.up) + len(c.failed) for c in clients)
                if done >= len(devices):
                    break
                time.sleep(0.05)
            ups = [u for c in clients for u in c.up]
            failed = [f for c in clients for f in c.failed]
            connect_s = (max(ups) - t0) if ups else float("nan")
            cpu, kernel = cpu_seconds(worker) - cpu0, cpu_seconds(worker, kernel_only=True) - sys0
            loop = cpu_seconds(worker, thread=worker) - loop0
            waited = run_queue_seconds(worker) - waited0
            each = [cpu_seconds(c.proc.pid) - c0 for c, c0 in zip(clients, client_cpu0)]
            client_cpu = sum(each)
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes what it has
                spy.wait(30)
            print(f"connected: {len(ups)}/{len(devices)} devices in {connect_s:.1f} s "
                  f"({len(ups) / connect_s:.0f}/s; provider CPU {cpu:.1f} s, "
                  f"{cpu / max(1, len(ups)) * 1000:.2f} ms per connect, {kernel:.1f} s of it in "
                  f"the kernel, {loop / max(1, len(ups)) * 1000:.2f} ms in the event loop's "
                  f"thread, {waited:.1f} s runnable on the run queue; client processes' CPU "
                  f"{client_cpu:.1f} s ({', '.join(f'{e:.1f}' for e in each)}; "
                  f"{client_cpu / max(1, len(ups)) * 1000:.2f} ms per connect)"
                  f"{'; failures ' + str(sorted(set(failed))) if failed else ''})", flush=True)
            time.sleep(2)  # let the worker settle
            rss, n_threads = rss_kib(worker), threads(worker)
            print(f"worker RSS: {base_rss / 1024:.1f} MiB before, {rss / 1024:.1f} MiB with "
                  f"{len(ups)} sockets -> {(rss - base_rss) / max(1, len(ups)):.1f} KiB per "
                  f"connected device; worker OS threads: {base_threads} before, {n_threads} after")
            p99 = sample_latency(op, worker, clients, per_user, args.samples)
            print_goals(len(devices), len(ups), connect_s, rss / 1024, p99)
            for c in clients:
                c.proc.kill()
    return 0


class LeanHttp:
    """One keep-alive connection, each request sent in one segment (http.client joins a bytes
    body to the headers): the ``requests`` library added 1.2 ms to the median and 3.6 ms to the
    p99 of a trivial server's answer on the 2-core machine, more than the provider's own work."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        import http.client

        self.connection = http.client.HTTPConnection(host, port, timeout=30)
        self.headers = headers

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.connection.request("POST", path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def client_floor(samples: int) -> list[float]:
    """The same client against a server that only answers (a thread on a plain socket): what
    the client and the loopback alone add to every sample, printed beside the figures."""
    import socket

    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return
            pending += data
            while b"\r\n\r\n" in pending:
                head, _, rest = pending.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                pending = rest[length:]
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    http = LeanHttp("127.0.0.1", listener.getsockname()[1],
                    {"Content-Type": "application/x-www-form-urlencoded"})
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        http.post("/bc-authorize", b"scope=openid&login_hint=someone")
        times.append(time.perf_counter() - t0)
    http.connection.close()
    listener.close()
    return times


def sample_latency(op, worker: int, clients: list[Client], per_user: dict[str, int],
                   samples: int) -> float:
    """Print the bc-authorize -> ``login_request`` delays; the first device's p99 (s)."""
    import base64
    from urllib.parse import urlencode

    basic = base64.b64encode(f"bench:{SECRET}".encode()).decode()
    http = LeanHttp("127.0.0.1", op.port, {"Authorization": f"Basic {basic}",
                                           "Content-Type": "application/x-www-form-urlencoded"})
    first, every, bc_times = [], [], []
    names = list(per_user)
    cpu0, wall0 = cpu_seconds(worker), time.perf_counter()
    for i in range(samples):
        username = random.choice(names)
        message = f"B{i:05d}"
        body = urlencode({"scope": "openid", "login_hint": username,
                          "binding_message": message}).encode()
        t0 = time.perf_counter()
        status, text = http.post("/bc-authorize", body)
        bc_times.append(time.perf_counter() - t0)
        assert status == 200, text
        want = per_user[username]
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            got = [a for c in clients for a in c.arrivals.get(message, ())]
            if len(got) >= want:
                break
            time.sleep(0.0005)
        if len(got) < want:
            print(f"sample {i}: only {len(got)}/{want} devices got the event")
            continue
        first.append(min(got) - t0)
        every.append(max(got) - t0)
    cpu, wall = cpu_seconds(worker) - cpu0, time.perf_counter() - wall0
    floor = client_floor(samples)
    ms = 1000.0
    print(f"bc-authorize -> login_request over {len(first)} requests "
          f"({statistics.mean(per_user.values()):.0f} devices per user):")
    print(f"  first device: median {statistics.median(first) * ms:.2f} ms, "
          f"p99 {pct(first, 99) * ms:.2f} ms")
    print(f"  all devices:  median {statistics.median(every) * ms:.2f} ms, "
          f"p99 {pct(every, 99) * ms:.2f} ms")
    print(f"  (bc-authorize response itself: median "
          f"{statistics.median(bc_times) * ms:.2f} ms, p99 {pct(bc_times, 99) * ms:.2f} ms;")
    print(f"   the same client against a server that only answers: median "
          f"{statistics.median(floor) * ms:.2f} ms, p99 {pct(floor, 99) * ms:.2f} ms)")
    print(f"  provider worker CPU: {cpu / samples * ms:.2f} ms per sample ({cpu / wall:.0%} of "
          f"one core while sampling: the pings of the connected devices and the requests)")
    return pct(first, 99) if first else float("nan")


def print_goals(devices: int, connected: int, connect_s: float, rss_mib: float,
                p99_s: float) -> None:
    """Issue 9's device goals, each MET or NOT MET in this run (they are set for 10,000)."""
    print(f"Goals (issue 9, set for 10,000 devices; this run: {devices}):")
    for name, value, goal, met in [
            ("all connected in", f"{connect_s:.1f} s", "< 10 s",
             connected == devices and connect_s < 10),
            ("bc-authorize -> login_request p99, first device", f"{p99_s * 1000:.2f} ms",
             "< 10 ms", p99_s < 0.010),
            ("worker RSS", f"{rss_mib:.0f} MiB", "< 400 MiB", rss_mib < 400)]:
        print(f"- {name}: {value} (goal {goal}) {'MET' if met else 'NOT MET'}")


def pin(worker: int, clients: list[Client]) -> None:
    """The worker's event loop (its main thread) on CPU 0, the client processes (and their
    threads) on the rest. The worker's other threads (the checkpoint, the offload thread that
    verifies signatures: server/offload.py) may run on any CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin-cpus needs at least two CPUs")
    os.sched_setaffinity(worker, cpus[:1])
    for c in clients:
        for task in Path(f"/proc/{c.proc.pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), cpus[1:])


def run_queue_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but not running (schedstat's second field)."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            waited += int((task / "schedstat").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return waited / 1e9


def cpu_seconds(pid: int, kernel_only: bool = False, thread: int | None = None) -> float:
    """A process's CPU time (all its threads), or one thread's."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[12]) if kernel_only else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
