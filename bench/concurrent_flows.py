"""Full flows from concurrent greenlets, in-process: the CPU a flow costs when requests
overlap as they do under the side-by-side benchmark's 20 loops, with the token exchanges and
the poll clients' decisions group-committed (storage/group_commit.Units) and, in alternating
rounds of the same process, each committed on its own.

    python bench/concurrent_flows.py [--loops 20] [--flows 600] [--rounds 3] [--wal-pages]

Each loop is a greenlet (gevent, as under ``gunicorn -k gevent``) running bc-authorize ->
approval (/testing/ciba-approval) -> token straight through the WSGI app. Prints µs of CPU
of this process per flow (the least of the rounds) and the units per commit. A sequential
run (profile_hot_paths.py --flows) cannot show a group commit: its batches hold one caller.
``--wal-pages``: then the pages a grouped flow appends to SQLite's log (each written whole at
commit and copied again by the checkpoint), with the checkpoint thread held off for that run.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import targets as t  # noqa: E402
from profile_hot_paths import wsgi_post  # noqa: E402

CIBA = "urn:openid:params:grant-type:ciba"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", type=int, default=20)
    ap.add_argument("--flows", type=int, default=600, help="flows per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each kind")
    ap.add_argument("--wal-pages", action="store_true",
                    help="also the log pages per grouped flow (SQLite)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ciba-flows-") as tmp:
        instance = Path(tmp) / "instance"
        t.prepare_ours(instance, "http://op.bench", "")
        from server import create_app
        from server.config import Settings
        from server.storage import ciba_requests

        app = create_app(Settings(instance_path=str(instance), issuer="http://op.bench",
                                  secret_key="bench-secret-key", max_pending_per_user=0,
                                  max_pending_per_client=0,
                                  automated_approval_token=t.APPROVAL_TOKEN))
        db = app.extensions["ciba"].db
        client = {"Authorization": t.basic_auth(),
                  "Content-Type": "application/x-www-form-urlencoded"}
        approver = {"Authorization": "Bearer " + t.APPROVAL_TOKEN,
                    "Content-Type": "application/x-www-form-urlencoded"}

        def flow() -> None:
            status, body = wsgi_post(app, "/bc-authorize", t.BC_BODY, client)
            assert status == 200, body
            rid = json.loads(body)["auth_req_id"]
            status, body = wsgi_post(app, "/testing/ciba-approval",
                                     urlencode({"auth_req_id": rid, "action": "allow"}), approver)
            assert status == 200, body
            status, body = wsgi_post(app, "/token", urlencode(
                {"grant_type": CIBA, "auth_req_id": rid}), client)
            assert status == 200, body

        def run(n: int) -> float:
            left = [n]

            def loop() -> None:
                while left[0] > 0:
                    left[0] -= 1
                    flow()

            started = time.process_time()
            gevent.joinall([gevent.spawn(loop) for _ in range(args.loops)], raise_error=True)
            return (time.process_time() - started) / n * 1e6

        grouped = ciba_requests.Units.run

        def alone(self, unit):  # each unit in its own transaction, no queue
            with self._transaction() as cursor:
                result = unit(cursor)
            self.commits += 1
            return result

        run(200)  # warm
        best = {"grouped": float("inf"), "one commit each": float("inf")}
        names = (ciba_requests.UNITS,)  # decisions and exchanges share one queue
        batches: list[str] = []
        for _ in range(args.rounds):
            for kind in best:
                ciba_requests.Units.run = grouped if kind == "grouped" else alone
                before = [getattr(db.extras.get(n), "commits", 0) for n in names]
                best[kind] = min(best[kind], run(args.flows))
                if kind == "grouped":
                    batches.append("/".join(
                        f"{args.flows / max(1, db.extras[n].commits - b):.1f}"
                        for n, b in zip(names, before)))
        ciba_requests.Units.run = grouped
        print(f"{args.loops} concurrent loops, {args.flows} flows per round, least of "
              f"{args.rounds} rounds, µs of CPU per flow:")
        for kind, us in best.items():
            print(f"  decisions and exchanges {kind}: {us:.0f} µs ({1e6 / us:.0f} flows/s on "
                  "one core)")
        print(f"  decisions and exchanges per commit when grouped: {', '.join(batches)}")
        if args.wal_pages:
            pages = wal_pages(instance, run, args.flows)
            print(f"  SQLite log pages per grouped flow: {pages:.2f}")
    return 0


def wal_pages(instance: Path, run, flows: int) -> float:
    """Log frames appended by ``flows`` grouped flows: a complete checkpoint first (the next
    commit restarts the log), the checkpoint thread held off meanwhile, then the frame count
    that a PASSIVE checkpoint reports."""
    import sqlite3

    from server.storage import checkpoint

    interval, checkpoint.INTERVAL = checkpoint.INTERVAL, 3600.0
    connection = sqlite3.connect(str(next(instance.rglob("*.db"))), isolation_level=None)
    try:
        gevent.sleep(2 * interval)  # a sleeping checkpoint thread wakes once more, then waits
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        run(flows)
        frames = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    finally:
        connection.close()
        checkpoint.INTERVAL = interval
    return frames / flows


if __name__ == "__main__":
    raise SystemExit(main())
