"""Where a bc-authorize and a pending token poll spend their time, in-process (no HTTP server,
no load generator): microseconds per call and the share of own time by package.

    python bench/profile_hot_paths.py [--calls 2000] [--database-url URL] [--top 15]
                                      [--no-fast-lane] [--inline-checkpoints] [--flows]

The app is called straight through WSGI (an environ as a server hands it over), so the figures
include Flask and werkzeug, or the fast lane (server/web/fast_lane.py; ``--no-fast-lane`` for
Flask's views), but not the server's HTTP parsing. The floor app is measured the same way first. Run under ``py-spy record`` for flame graphs of
the real server; this script gives the numbers for docs/performance.md.

The pending caps are off for those loops (they pile requests on one user, targets.NO_CAPS); the
last figures are what the caps' two counts add to each bc-authorize: with few pending requests,
and with the user at 9 and the client at 999, just under the default caps.

``--flows``: full flows instead (bc-authorize, approval through /testing/ciba-approval as the
side-by-side benchmark does, token exchange): µs of CPU per step (the least of five rounds of
``--calls`` flows), then each step's own profile; and the decision alone (``decisions.decide``,
where the device protocol's approval ends too). ``--calls 300`` is plenty.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import targets as t  # noqa: E402

GROUPS = ("sqlalchemy", "werkzeug", "flask", "authlib", "joserfc", "cryptography", "sqlite3",
          "psycopg", "json", "server", "redis")


def wsgi_post(app, path: str, body: str, headers: dict) -> tuple[int, bytes]:
    """One POST straight into the WSGI app, as a server hands it over (no test client: its
    request building would be most of what is measured)."""
    data = body.encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
               "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
               "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000",
               "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
               "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
               "wsgi.multiprocess": False, "wsgi.run_once": False,
               "CONTENT_TYPE": headers["Content-Type"], "CONTENT_LENGTH": str(len(data)),
               "HTTP_AUTHORIZATION": headers["Authorization"]}
    answer: list = []
    chunks = app(environ, lambda status, _headers, exc=None: answer.append(status))
    try:
        out = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return int(answer[0].split()[0]), out


def group_of(filename: str) -> str:
    if "/server/" in filename and "site-packages" not in filename:
        return "ours (server/)"
    for name in GROUPS:
        if f"/{name}/" in filename or filename.startswith(f"<{name}"):
            return name
    if filename.startswith("~") or filename.startswith("<built-in"):
        return "builtins/C"
    return "python stdlib/other"


def shares(stats: pstats.Stats) -> list[tuple[str, float]]:
    own: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        own[group_of(filename)] += tottime
    total = sum(own.values()) or 1.0
    return sorted(((g, v / total) for g, v in own.items()), key=lambda x: -x[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--no-fast-lane", action="store_true",
                    help="through Flask's views (CIBA_FAST_LANE=false) instead of the fast lane")
    ap.add_argument("--inline-checkpoints", action="store_true",
                    help="SQLite's WAL checkpoints inside the commits "
                         "(CIBA_SQLITE_CHECKPOINT_THREAD=false)")
    ap.add_argument("--sort", default="tottime", help="pstats order: tottime, cumulative")
    ap.add_argument("--flows", action="store_true",
                    help="full flows (bc-authorize, approval, token) per step instead")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ciba-profile-") as tmp:
        instance = Path(tmp) / "instance"
        t.prepare_ours(instance, "http://op.bench", args.database_url)
        from server import create_app
        from server.config import Settings

        app = create_app(Settings(instance_path=str(instance), issuer="http://op.bench",
                                  database_url=args.database_url, secret_key="bench-secret-key",
                                  max_pending_per_user=0, max_pending_per_client=0,
                                  fast_lane=not args.no_fast_lane,
                                  sqlite_checkpoint_thread=not args.inline_checkpoints,
                                  automated_approval_token=t.APPROVAL_TOKEN))
        headers = {"Authorization": t.basic_auth(),
                   "Content-Type": "application/x-www-form-urlencoded"}
        if args.flows:
            flows(app, headers, args.calls, args.top, args.sort)
            return 0

        def bc():
            status, body = wsgi_post(app, "/bc-authorize", t.BC_BODY, headers)
            assert status == 200, body
            return json.loads(body)["auth_req_id"]

        ids = [bc() for _ in range(200)]
        polls = [f"grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={i}"
                 for i in ids]

        def poll(n=[0]):
            n[0] += 1
            status, body = wsgi_post(app, "/token", polls[n[0] % len(polls)], headers)
            assert status == 400, body

        from floor_app import app as floor

        def floor_call():
            wsgi_post(floor, "/token", polls[0], headers)

        for name, call in (("floor (bench/floor_app.py)", floor_call), ("bc-authorize", bc),
                           ("pending poll", poll)):
            for _ in range(200):
                call()  # warm
            started = time.perf_counter()
            for _ in range(args.calls):
                call()
            per_call = (time.perf_counter() - started) / args.calls * 1e6
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.calls):
                call()
            profiler.disable()
            stats = pstats.Stats(profiler)
            print(f"\n## {name}: {per_call:.0f} µs per call ({1e6 / per_call:.0f}/s on one "
                  "core, in-process)\n")
            print("own time by package: " + ", ".join(
                f"{g} {s:.0%}" for g, s in shares(stats) if s >= 0.01))
            print()
            stats.sort_stats(args.sort).print_stats(args.top)
        caps_cost(app.extensions["ciba"], args.calls)
    return 0


def flows(app, headers: dict, calls: int, top: int, sort: str = "tottime",
          rounds: int = 5) -> None:
    """µs per step of a full flow (CPU time of this process, the least of ``rounds`` rounds
    of ``calls`` flows: other work on a shared machine inflates wall time, not this), each
    step's profile, and the decision alone."""
    from urllib.parse import urlencode

    approver = {"Authorization": "Bearer " + t.APPROVAL_TOKEN,
                "Content-Type": "application/x-www-form-urlencoded"}
    steps = ("bc-authorize", "approval", "token")
    spent = dict.fromkeys(steps, 0.0)
    profilers = {step: cProfile.Profile() for step in steps}

    def step(name, path, body, hdrs, profile):
        started = time.process_time()
        if profile:
            profilers[name].enable()
        status, answer = wsgi_post(app, path, body, hdrs)
        if profile:
            profilers[name].disable()
        spent[name] += time.process_time() - started
        assert status == 200, answer
        return answer

    def flow(profile=False):
        rid = json.loads(step("bc-authorize", "/bc-authorize", t.BC_BODY, headers, profile)
                         )["auth_req_id"]
        step("approval", "/testing/ciba-approval",
             urlencode({"auth_req_id": rid, "action": "allow"}), approver, profile)
        step("token", "/token", urlencode({"grant_type": "urn:openid:params:grant-type:ciba",
                                           "auth_req_id": rid}), headers, profile)

    for _ in range(200):
        flow()  # warm
    least = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        spent.update(dict.fromkeys(steps, 0.0))
        for _ in range(calls):
            flow()
        least = {s: min(least[s], spent[s] / calls * 1e6) for s in steps}
    total = sum(least.values())
    print(f"\n## full flow: {total:.0f} µs of CPU ({1e6 / total:.0f} flows/s on one core, "
          "in-process): " + ", ".join(f"{s} {least[s]:.0f} µs" for s in steps))
    for _ in range(calls):
        flow(profile=True)
    for name in steps:
        stats = pstats.Stats(profilers[name])
        print(f"\n## {name} (profiled)\n\nown time by package: " + ", ".join(
            f"{g} {s:.0%}" for g, s in shares(stats) if s >= 0.01) + "\n")
        stats.sort_stats(sort).print_stats(top)
    decision_alone(app.extensions["ciba"], calls)


def decision_alone(provider, calls: int) -> None:
    """µs of decisions.decide (the decision transaction with its audit record) on pending
    requests: what every approval path (device, console, conformance hook) ends in."""
    from server.oauth.decisions import Outcome, decide
    from server.storage import ciba_requests

    now = provider.clock.now()
    alice = provider.find_user("alice")
    ids = []
    for _ in range(calls):
        rid = uuid.uuid4().hex
        ciba_requests.insert(
            provider.db, id=rid, auth_req_id_hash=uuid.uuid4().hex * 2,
            device_request_id=uuid.uuid4().hex, client_id=t.CLIENT_ID, user_id=alice.id,
            scope="openid", delivery_mode="poll", created_at=now, expires_at=now + 300,
            interval=5, approval_token_hash=uuid.uuid4().hex, status="pending")
        ids.append(rid)
    started = time.process_time()
    for rid in ids:
        assert decide(provider, rid, True, "device:bench") is Outcome.APPROVED
    per_call = (time.process_time() - started) / calls * 1e6
    print(f"\n## decisions.decide alone (approve, poll client): {per_call:.0f} µs of CPU per "
          "call")


def caps_cost(provider, calls: int) -> None:
    """µs of limits.check_pending_caps (two prepared counts) per bc-authorize: with few pending
    requests, and with the user at 9 and the client at 999, just under the default caps."""
    import dataclasses
    import uuid

    from server.admin import add_user
    from server.oauth.limits import check_pending_caps
    from server.storage import ciba_requests
    from server.storage.models import CibaRequest

    now = provider.clock.now()
    alice = provider.find_user("alice")
    bob = add_user(provider, "bob", "bob-password")
    settings = dataclasses.replace(provider.settings, max_pending_per_user=10,
                                   max_pending_per_client=1000)
    for mine, client_total in ((1, 20), (9, 999)):
        with provider.db.session() as s:
            s.query(CibaRequest).delete()
        for n in range(client_total):
            ciba_requests.insert(
                provider.db, id=uuid.uuid4().hex, auth_req_id_hash=uuid.uuid4().hex * 2,
                device_request_id=uuid.uuid4().hex, client_id=t.CLIENT_ID,
                user_id=alice.id if n < mine else bob.id, scope="openid",
                delivery_mode="poll", created_at=now, expires_at=now + 300, interval=5,
                approval_token_hash=uuid.uuid4().hex, status="pending")
        started = time.perf_counter()
        for _ in range(calls):
            check_pending_caps(provider.db, settings, t.CLIENT_ID, alice.id, now)
        per_call = (time.perf_counter() - started) / calls * 1e6
        print(f"\n## pending caps, user at {mine} and client at {client_total} pending: "
              f"{per_call:.0f} µs per bc-authorize")


if __name__ == "__main__":
    sys.exit(main())
