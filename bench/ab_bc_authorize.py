"""A/B of provider settings on bc-authorize: one gunicorn gevent worker per variant, driven in
alternating short runs by the side-by-side benchmark's load generator; prints each run and the
medians of answers/s, the worker's CPU µs per answer (from /proc, steadier than answers/s on a
shared machine) and p99.

    python bench/ab_bc_authorize.py --runs 8 thread: inline:CIBA_SQLITE_CHECKPOINT_THREAD=false

Each variant is ``name:VAR=value,VAR=value`` (the provider's CIBA_* settings, ``WORKER=`` the
gunicorn worker class, by default bench/targets.py's, and ``TREE=`` another checkout of this
provider to run, e.g. ``git worktree add /tmp/before main``); a name starting with ``floor`` is
the bare Flask endpoint. See docs/performance.md, rounds 4, 5 and 8:

    python bench/ab_bc_authorize.py one: two:WORKER=gevent floor: floor-two:WORKER=gevent
    python bench/ab_bc_authorize.py --runs 10 before:TREE=/tmp/before after: floor:
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import targets as t
from side_by_side import default_peer_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", help="name:VAR=value,... or floor")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--duration", type=int, default=4, help="seconds per run")
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args(argv)
    variants = {}
    for spec in args.variants:
        name, _, envs = spec.partition(":")
        variants[name] = dict(e.split("=", 1) for e in envs.split(",") if e)
    t.raise_fd_limit(4096)
    peer = t.prepare_peer(default_peer_dir(), Path.home() / ".cache" / "ciba-bench")
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in variants}
    headers = {"authorization": t.basic_auth(),
               "content-type": "application/x-www-form-urlencoded"}
    with tempfile.TemporaryDirectory(prefix="ciba-ab-") as tmp:
        started: dict[str, t.Target] = {}
        try:
            for name, env in variants.items():
                worker = env.pop("WORKER", t.WORKER_CLASS)
                root = Path(env.pop("TREE", t.ROOT)).resolve()
                if name.startswith("floor"):
                    started[name] = t.start_floor("gunicorn", Path(tmp), worker, name)
                    continue
                instance = Path(tmp) / name
                t.prepare_ours(instance, "http://127.0.0.1", "")
                started[name] = t.start_ours(name, "gunicorn", 1, instance, "", "", Path(tmp), env,
                                             worker, root)
            for run in range(args.runs + 1):  # run 0 warms up
                order = list(started.items())
                for name, target in order if run % 2 == 0 else reversed(order):
                    spec = {"mode": "cannon", "url": target.bc_url, "headers": headers,
                            "body": t.BC_BODY, "duration": args.duration,
                            "connections": args.connections, "answered": ["200"]}
                    pids = target.pids()
                    cpu0 = {pid: t.cpu_seconds(pid) for pid in pids}
                    result = t.loadgen(peer, spec)
                    cpu = sum(t.cpu_seconds(pid) - c for pid, c in cpu0.items())
                    if run == 0 or not result["answered_per_s"]:
                        continue
                    per = cpu / (result["answered_per_s"] * args.duration) * 1e6
                    results[name].append((result["answered_per_s"], per, result["p99_ms"]))
                    print(f"{name:12} {result['answered_per_s']:7.0f}/s  {per:6.0f} µs CPU per "
                          f"answer  p99 {result['p99_ms']} ms", file=sys.stderr, flush=True)
        finally:
            for target in started.values():
                target.stop()
    for name, rows in results.items():
        if rows:
            print(f"{name:12} median {statistics.median(r[0] for r in rows):7.0f}/s  "
                  f"{statistics.median(r[1] for r in rows):6.0f} µs CPU per answer  "
                  f"p99 {statistics.median(r[2] for r in rows)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
