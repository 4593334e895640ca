"""A/B of full flows between this checkout and another one (main, say): one gunicorn worker of
each, side by side on the same machine, driven in alternating short runs by the side-by-side
benchmark's load generator (bc-authorize -> approval -> token in concurrent loops); prints each
run and the medians of flows/s and of the worker's CPU µs per flow (from /proc: steadier than
flows/s on a shared machine, where both workers meet the same neighbours run after run).

    python bench/ab_flows.py /work/main --runs 8 --duration 5

The other checkout runs with its own code (its folder first on PYTHONPATH, gunicorn's --chdir)
on a database prepared by this checkout (the same schema head; see docs/performance.md, round 6
of full flows).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import targets as t
from side_by_side import default_peer_dir


def start(name: str, checkout: Path, tmp: Path) -> t.Target:
    """One gunicorn worker of ``checkout`` on a fresh SQLite instance, as targets.start_ours."""
    instance = tmp / name
    t.prepare_ours(instance, "http://127.0.0.1", "")
    port = t.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"CIBA_INSTANCE_PATH": str(instance), "CIBA_ISSUER": base,
           "CIBA_SECRET_KEY": "bench-secret-key", "CIBA_AUTOMATED_APPROVAL_TOKEN":
           t.APPROVAL_TOKEN, "PYTHONPATH": str(checkout), "PYTHONDONTWRITEBYTECODE": "1",
           **t.NO_CAPS}
    proc = t.Process(t.server_command("gunicorn", 1, port, "server.wsgi:app", checkout),
                     env=env, cwd=str(checkout), log_path=tmp / f"{name}.log")
    t.wait_http(base + "/.well-known/openid-configuration", 60, proc)
    return t.Target(name, base, approve={"kind": "ours", "url": base + "/testing/ciba-approval",
                                         "token": t.APPROVAL_TOKEN}, process=proc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other", type=Path, help="the other checkout (e.g. /work/main)")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--duration", type=int, default=5, help="seconds per run")
    ap.add_argument("--loops", type=int, default=20, help="concurrent full-flow loops")
    args = ap.parse_args(argv)
    peer = t.prepare_peer(default_peer_dir(), Path.home() / ".cache" / "ciba-bench")
    checkouts = {"this": t.ROOT, "other": args.other.resolve()}
    results: dict[str, list[tuple[float, float]]] = {n: [] for n in checkouts}
    with tempfile.TemporaryDirectory(prefix="ciba-ab-flows-") as tmp:
        started: dict[str, t.Target] = {}
        try:
            for name, checkout in checkouts.items():
                started[name] = start(name, checkout, Path(tmp))
            for run in range(args.runs + 1):  # run 0 warms up
                order = list(started.items())
                for name, target in order if run % 2 == 0 else reversed(order):
                    spec = {"mode": "flows", "bc_url": target.bc_url,
                            "token_url": target.token_url, "authorization": t.basic_auth(),
                            "bc_body": t.BC_BODY, "approve": target.approve,
                            "loops": args.loops, "duration": args.duration,
                            "connections": args.loops, "answered": []}
                    pids = target.pids()
                    cpu0 = {pid: t.cpu_seconds(pid) for pid in pids}
                    result = t.loadgen(peer, spec)
                    cpu = sum(t.cpu_seconds(pid) - c for pid, c in cpu0.items())
                    flows = result["answered_per_s"]
                    if run == 0 or not flows:
                        continue
                    per = cpu / (flows * args.duration) * 1e6
                    results[name].append((flows, per))
                    print(f"{name:6} {flows:7.0f} flows/s  {per:6.0f} µs CPU per flow  "
                          f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        finally:
            for target in started.values():
                target.stop()
    for name, rows in results.items():
        if rows:
            print(f"{name:6} ({checkouts[name]}) median {statistics.median(r[0] for r in rows):6.0f}"
                  f" flows/s  {statistics.median(r[1] for r in rows):6.0f} µs CPU per flow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
