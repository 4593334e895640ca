"""What the Prometheus metrics add to each request (issue 13; the hot-path budget of issue 9).

Prints the cost of what server/web/ops.py does per request (``metrics.request_done``: one
counter increment and one histogram observation), in-process and in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, as under
gunicorn with server.gunicorn_conf), and a /metrics scrape. Run: python bench/metrics_overhead.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

N = 200_000


def per_request() -> float:
    from server import metrics

    start = time.perf_counter()
    for _ in range(N):
        metrics.request_done("ciba.token", "POST", 400, 0.003)
    return (time.perf_counter() - start) / N * 1e6


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(f"{per_request():.2f}")
        return
    rows = []
    for label, env in (("in-process", {}), ("multiprocess", {"PROMETHEUS_MULTIPROC_DIR": ""})):
        with tempfile.TemporaryDirectory() as folder:
            if "PROMETHEUS_MULTIPROC_DIR" in env:
                env = {"PROMETHEUS_MULTIPROC_DIR": folder}
            out = subprocess.run([sys.executable, __file__, "--child"], text=True, check=True,
                                 capture_output=True, env={**os.environ, **env}).stdout.strip()
        rows.append((label, out))
    print(f"metrics per request ({N:,} requests):")
    for label, micros in rows:
        print(f"  {label:<13} {micros} µs")


if __name__ == "__main__":
    main()
