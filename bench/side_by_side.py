"""Side-by-side benchmark: node-oidc-provider (the peer), a bare Flask endpoint (the floor) and
this provider, driven by one load generator (autocannon, from the peer's npm install), in
alternating rounds; prints each metric for every target, the ratios, and the goals of issue 9.

    python bench/side_by_side.py                      # everything, about 14 minutes
    python bench/side_by_side.py --rounds 1 --duration 5 --targets peer,floor,ours-sqlite

Metrics: bc-authorize req/s, p50, p99; token requests on pending requests (authorization_pending
and slow_down both count as answered); full flows/s (bc-authorize -> approval -> token, in
``--loops`` concurrent loops); RSS of each server after its runs; CPU seconds of each process.
``bc-rate`` and ``poll-rate``: the same requests offered at ``--rate`` per second in all (the same
load for every target), for the p99 at the same load; the closed-loop metrics measure each
target at its own maximum, where the latency is the connections over its throughput.
The peer is copied from ``--peer-dir`` (CIBA_BENCH_PEER_DIR; default
../shared/peers/node-oidc-provider beside the checkout) to ``--cache-dir`` and npm-installed
there. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import targets as t

ALL_TARGETS = ["peer", "floor", "ours-sqlite", "ours-pg", "ours-sqlite-w2", "ours-pg-w2",
               "ours-sqlite-run"]
#: Also accepted: ``ours-sqlite-flask`` (and ``ours-pg-flask``): one process with the fast lane
#: off (CIBA_FAST_LANE=false), every request through Flask's views; ``ours-sqlite-inline``: one
#: process with SQLite's WAL checkpoints inside the commits (CIBA_SQLITE_CHECKPOINT_THREAD=false);
#: ``ours-sqlite-run-gunicorn`` (and ``-w3``): ``ciba-provider run --server gunicorn``.
VARIANTS = {"flask": {"CIBA_FAST_LANE": "false"},
            "inline": {"CIBA_SQLITE_CHECKPOINT_THREAD": "false"}}
METRICS = ["bc", "poll", "flows", "bc-rate", "poll-rate"]
ANSWERED = {"bc": ["200"], "poll": ["400:authorization_pending", "400:slow_down"]}
ANSWERED.update({m + "-rate": v for m, v in ANSWERED.items()})


def default_peer_dir() -> Path:
    for candidate in (t.ROOT.parent / "shared" / "peers" / "node-oidc-provider",
                      t.ROOT.parents[1] / "shared" / "peers" / "node-oidc-provider"):
        if (candidate / "provider.mjs").exists():
            return candidate
    return t.ROOT.parent / "shared" / "peers" / "node-oidc-provider"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer-dir", type=Path,
                    default=Path(os.environ.get("CIBA_BENCH_PEER_DIR") or default_peer_dir()))
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get(
        "CIBA_BENCH_CACHE_DIR", Path.home() / ".cache" / "ciba-bench")))
    ap.add_argument("--targets", default=",".join(ALL_TARGETS),
                    help=f"comma-separated, from {', '.join(ALL_TARGETS)}")
    ap.add_argument("--metrics", default=",".join(METRICS))
    ap.add_argument("--server", choices=["gunicorn", "granian"], default="gunicorn",
                    help="server for the floor and ours (granian: HTTP only, no WebSockets)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8, help="seconds per run")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rate", type=int, default=1500,
                    help="requests per second offered in all, for bc-rate and poll-rate")
    ap.add_argument("--loops", type=int, default=20, help="concurrent full-flow loops")
    ap.add_argument("--pending", type=int, default=200, help="pending requests polled")
    ap.add_argument("--postgres-url", default=os.environ.get(
        "CIBA_TEST_POSTGRES_URL", "postgresql+psycopg://ciba:ciba@127.0.0.1:5432/ciba"))
    ap.add_argument("--pg-schema", default="ciba_bench")
    ap.add_argument("--redis-url", default=os.environ.get("CIBA_BENCH_REDIS_URL") or os.environ.get(
        "CIBA_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0")
    return ap.parse_args(argv)


def start(name: str, args, peer: Path, work: Path) -> t.Target:
    if name == "peer":
        return t.start_peer(peer, work)
    if name == "floor":
        return t.start_floor(args.server, work)
    _, db, *rest = name.split("-")
    variants = [part for part in rest if part in VARIANTS]
    env = {k: v for part in variants for k, v in VARIANTS[part].items()}
    rest = [part for part in rest if part not in VARIANTS]
    # docs/deployment.md's `ciba-provider run`: ours-sqlite-run (2 granian HTTP processes + the
    # gunicorn device one), ours-sqlite-run-gunicorn (2 gevent workers serving everything),
    # ours-sqlite-run-gunicorn-w3 (3).
    launcher = rest[:1] == ["run"]
    run_server = "gunicorn" if "gunicorn" in rest else "granian"
    rest = [part for part in rest if part not in ("run", "gunicorn")]
    workers = int(rest[0][1:]) if rest else 2 if launcher else 1
    instance = work / name
    tail = [part for part in name.split("-")[2:] if part not in VARIANTS]
    schema = f"{args.pg_schema}_{'_'.join(tail) or 'w1'}"
    url = "" if db == "sqlite" else t.reset_postgres_schema(
        args.postgres_url, schema + "".join("_" + v for v in variants))
    t.prepare_ours(instance, "http://127.0.0.1", url)
    if launcher:
        return t.start_ours_run(name, workers, instance, url, args.redis_url, work, run_server)
    # Several processes need the Redis bus for device events (docs/deployment.md).
    return t.start_ours(name, args.server, workers, instance, url,
                        args.redis_url if workers > 1 else "", work,
                        env or None)


def run_metric(target: t.Target, metric: str, args, peer: Path, duration: int) -> dict | None:
    headers = {"authorization": t.basic_auth(),
               "content-type": "application/x-www-form-urlencoded"}
    base = metric.removesuffix("-rate")
    if base == "bc":
        spec = {"mode": "cannon", "url": target.bc_url, "headers": headers, "body": t.BC_BODY}
    elif base == "poll":
        ids = ["x"] if target.name == "floor" else target.pending_ids(args.pending)
        spec = {"mode": "cannon", "url": target.token_url, "headers": headers,
                "bodies": [f"grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={i}"
                           for i in ids]}
    else:
        if target.approve is None:
            return None
        spec = {"mode": "flows", "bc_url": target.bc_url, "token_url": target.token_url,
                "authorization": t.basic_auth(), "bc_body": t.BC_BODY,
                "approve": target.approve, "loops": args.loops}
    if base != metric:
        spec["rate"] = args.rate  # autocannon's overallRate
    spec.update(duration=duration, connections=args.connections,
                answered=ANSWERED.get(metric, []) + (["200"] if target.name == "floor" else []))
    pids = target.pids()
    cpu0 = {pid: t.cpu_seconds(pid) for pid in pids}
    result = t.loadgen(peer, spec)
    result["cpu"] = {pid: (t.cpu_seconds(pid) - c) / duration for pid, c in cpu0.items()}
    result["rss_mib"] = t.rss_mib(pids)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in args.targets.split(",") if n]
    metrics = [m for m in args.metrics.split(",") if m]
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:  # the load generator would run something else under that name
        raise SystemExit(f"unknown metric {', '.join(unknown)}: choose from {', '.join(METRICS)}")
    t.raise_fd_limit(4096)
    # autocannon comes from the peer's npm install, even when the peer is not compared.
    peer = t.prepare_peer(args.peer_dir, args.cache_dir)
    results: dict[tuple[str, str], list[dict]] = {}
    started: list[t.Target] = []
    with tempfile.TemporaryDirectory(prefix="ciba-bench-") as tmp:
        try:
            for name in names:
                started.append(start(name, args, peer, Path(tmp)))
            for target in started:  # warm-up: imports, caches, JIT, connection pools
                for metric in metrics:
                    run_metric(target, metric, args, peer, 2)
            for round_no in range(args.rounds):
                for metric in metrics:
                    # Alternate the order each round, so no target always runs first.
                    order = started if round_no % 2 == 0 else list(reversed(started))
                    for target in order:
                        result = run_metric(target, metric, args, peer, args.duration)
                        if result is not None:
                            results.setdefault((target.name, metric), []).append(result)
                            print(f"round {round_no + 1} {metric:5} {target.name:15} "
                                  f"{result['answered_per_s']:8.0f}/s p50 {result['p50_ms']} "
                                  f"p99 {result['p99_ms']} ms {result['counts']}",
                                  file=sys.stderr, flush=True)
        finally:
            for target in started:
                target.stop()
    print(report(results, names, metrics, args))
    return 0


def med(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def report(results: dict, names: list[str], metrics: list[str], args) -> str:
    from report import render

    return render(results, names, metrics, args, med)


if __name__ == "__main__":
    sys.exit(main())
