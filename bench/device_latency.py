"""Benchmark: bc-authorize -> the request's card drawn in the real device app under Xvfb.

    python bench/device_latency.py --requests 60

Starts a real ``ciba-provider serve`` (tests/support) and the Kivy app under xvfb-run with the
tests' remote control (tests/device_app/app_driver.py), enrolls the app from the provider's QR
image, then, one request at a time: note the time, POST /bc-authorize, and wait until the app's
window has flipped a frame showing the new card (the driver records the first ``on_flip`` after
the card exists). Each request is cancelled afterwards so that Home holds one card at a time.
Prints p50, p90, p99 and the maximum in milliseconds, and the provider-restart figure: the time
from the provider answering again to a new request's card drawn.

The machine is shared: run it a few times and report the spread, not one figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "device_app")]

import requests  # noqa: E402

from app_remote import AppRemote, connected, enroll_from_qr_image  # noqa: E402
from provider_process import CLIENT_ID, CLIENT_SECRET, ProviderProcess  # noqa: E402


def wait_drawn(app: AppRemote, message: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drawn = app.call("drawn", binding_message=message)
        if drawn:
            return drawn
        time.sleep(0.005)
    raise RuntimeError(f"card {message!r} not drawn within {timeout}s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        with ProviderProcess(work / "provider").setup() as provider:
            app = AppRemote(work / "device-data", work / "app.log")
            try:
                enroll_from_qr_image(app, provider, work)
                latencies = []
                for i in range(args.requests + 3):
                    message = f"BENCH {i:04d}"
                    started = time.time()
                    auth_req_id = provider.bc_authorize(message)
                    drawn = wait_drawn(app, message)
                    if i >= 3:  # the first few warm up caches and fonts
                        latencies.append((drawn - started) * 1000)
                    requests.post(provider.url("/bc-cancel"), data={"auth_req_id": auth_req_id},
                                  auth=(CLIENT_ID, CLIENT_SECRET), timeout=15)
                    app.wait_state(lambda s, m=message: all(c["binding_message"] != m
                                                            for c in s["cards"]))
                print(f"bc-authorize -> card drawn, {len(latencies)} requests (ms): "
                      f"p50 {statistics.median(latencies):.0f}, p90 {percentile(latencies, 90):.0f}, "
                      f"p99 {percentile(latencies, 99):.0f}, max {max(latencies):.0f}")

                provider.stop()
                app.wait_state(lambda s: not connected(s), timeout=30)
                time.sleep(3)  # offline for a while: the app is probing
                provider.start()
                answered = time.time()
                provider.bc_authorize("AFTER RESTART")
                drawn = wait_drawn(app, "AFTER RESTART", timeout=30)
                print(f"provider restart: provider answering -> new request's card drawn: "
                      f"{(drawn - answered) * 1000:.0f} ms")
            finally:
                app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
