"""Where a bc-authorize and a pending token poll spend their time, in-process (no HTTP server,
no load generator): microseconds per call and the share of own time by package.

    python bench/profile_hot_paths.py [--calls 2000] [--database-url URL] [--top 15]
                                      [--no-fast-lane] [--inline-checkpoints]

The app is called straight through WSGI (an environ as a server hands it over), so the figures
include Flask and werkzeug, or the fast lane (server/web/fast_lane.py; ``--no-fast-lane`` for
Flask's views), but not the server's HTTP parsing. The floor app is measured the same way first. Run under ``py-spy record`` for flame graphs of
the real server; this script gives the numbers for docs/performance.md.

The pending caps are off for those loops (they pile requests on one user, targets.NO_CAPS); the
last figures are what the caps' two counts add to each bc-authorize: with few pending requests,
and with the user at 9 and the client at 999, just under the default caps.
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
                                  sqlite_checkpoint_thread=not args.inline_checkpoints))
        headers = {"Authorization": t.basic_auth(),
                   "Content-Type": "application/x-www-form-urlencoded"}

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
            stats.sort_stats("tottime").print_stats(args.top)
        caps_cost(app.extensions["ciba"], args.calls)
    return 0


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
