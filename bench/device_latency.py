"""Benchmark: bc-authorize -> the request's card drawn in the real device app under Xvfb.

    python bench/device_latency.py                      # 60 requests, 5 provider restarts
    python bench/device_latency.py --requests 200 --restarts 10 --gap 0.3

Starts a real ``ciba-provider serve`` (tests/support) and the Kivy app under xvfb-run with the
tests' remote control (tests/device_app/app_driver.py), and enrolls the app from the provider's
QR image. Then, one request at a time: note the time, POST /bc-authorize, and wait until a frame
showing the new card has been swapped to the X server (the driver notes the first buffer swap
that returns after the card exists; it answers these questions off the app's UI thread, so the
polling does not wake the app). Each request is then cancelled and, once its card is gone, the
next comes ``--gap`` seconds later. Prints p50, p90, p99 and the maximum in milliseconds, the
same split by stage (the provider until the app's WebSocket thread has the message; the handoff
to the UI thread; building the card; drawing and swapping the frame), the slowest requests with
the garbage collector's pauses among them, how many frames were drawn and what a buffer swap
cost (software OpenGL, llvmpipe, does its rendering there), and the app's CPU use while idle.

Then the provider restart: stop it, leave it down for 1-5 s, start it and note its first
answer (polled every 5 ms), create a request: the time from that answer to the card drawn.

The machine is shared: the load average is printed with the figures; run it a few times and
report the spread, not one figure.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "device_app")]

import requests  # noqa: E402

from app_remote import AppRemote, connected, enroll_from_qr_image  # noqa: E402
from provider_process import ProviderProcess  # noqa: E402
from tests.support.provider_process import Process  # noqa: E402

STAGES = (("provider", "received"), ("handoff", "handled"), ("build", "built"), ("draw", "drawn"))


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def figures(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):.1f}, p90 {percentile(values, 90):.1f}, "
            f"p99 {percentile(values, 99):.1f}, max {max(values):.1f}")


def wait_drawn(app: AppRemote, message: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drawn = app.call("drawn", binding_message=message)
        if drawn:
            return drawn
        time.sleep(0.005)
    raise RuntimeError(f"card {message!r} not drawn within {timeout}s")


def split(started: float, timeline: dict) -> dict:
    """Milliseconds spent in each stage, and the garbage collector's pauses of 2 ms or more."""
    out, before = {}, started
    for name, mark in STAGES:
        out[name] = (timeline[mark] - before) * 1000
        before = timeline[mark]
    out["gc"] = [f"gen{gen} {seconds * 1000:.0f}" for _at, seconds, gen in timeline["gc"]
                 if seconds >= 0.002]
    return out


def requests_to_cards(provider: ProviderProcess, app: AppRemote, count: int, gap: float) -> None:
    latencies, stages = [], []
    swaps_before = len(app.call("swaps"))
    for i in range(count + 3):
        message = f"BENCH {i:04d}"
        started = time.time()
        auth_req_id = provider.bc_authorize(message)
        drawn = wait_drawn(app, message)
        if i >= 3:  # the first few warm up caches and fonts
            latencies.append((drawn - started) * 1000)
            stages.append(split(started, app.call("timeline", binding_message=message)))
        provider.bc_cancel(auth_req_id)
        while message in app.call("cards"):  # withdrawn (a light look: no screen redrawn)
            time.sleep(0.02)
        time.sleep(gap)
    print(f"bc-authorize -> card drawn, {len(latencies)} requests (ms): {figures(latencies)}  "
          f"[{load()}]")
    for name, _mark in STAGES:
        print(f"  {name:<8} {figures([s[name] for s in stages])}")
    slowest = sorted(enumerate(zip(latencies, stages)), key=lambda pair: pair[1][0])[-3:]
    for i, (total, s) in reversed(slowest):
        parts = ", ".join(f"{name} {s[name]:.0f}" for name, _ in STAGES)
        print(f"  slowest {total:.0f} ms (#{i}): {parts}"
              + (f"; gc pauses: {', '.join(s['gc'])}" if s["gc"] else ""))
    swaps = [seconds * 1000 for seconds in app.call("swaps")[swaps_before:]]
    print(f"  frames drawn meanwhile: {len(swaps)}; buffer swap (ms): {figures(swaps)}")


def idle_cpu(app: AppRemote, seconds: float = 10.0) -> None:
    """The app's CPU use (all its threads) while nothing happens (after the last notice has gone
    and the idle work has run): Kivy's loop and clock."""
    time.sleep(10)
    before, started = app.call("cpu_seconds"), time.monotonic()
    time.sleep(seconds)
    used = app.call("cpu_seconds") - before
    print(f"idle app: {100 * used / (time.monotonic() - started):.1f} % of one CPU  [{load()}]")


def start_timed(provider: ProviderProcess) -> float:
    """Start the provider (as ProviderProcess.start does) and poll it every 5 ms: the time.time()
    of its first answer, a precise start for the reconnect figure."""
    provider.process = Process(provider.command(), env=provider.environ(), cwd=str(ROOT),
                               log_path=provider.log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(provider.url("/.well-known/openid-configuration"), timeout=2)
            return time.time()
        except requests.RequestException:
            time.sleep(0.005)
    raise RuntimeError("the provider did not start")


def restart(provider: ProviderProcess, app: AppRemote, n: int, offline: float) -> float:
    """Stop the provider, leave it down for ``offline`` seconds (the app is probing), start it:
    milliseconds from its first answer to a new request's card drawn."""
    provider.stop()
    app.wait_state(lambda s: not connected(s), timeout=30)
    time.sleep(offline)
    answered = start_timed(provider)
    message = f"AFTER RESTART {n}"
    provider.bc_authorize(message)
    drawn = wait_drawn(app, message, timeout=30)
    timeline = app.call("timeline", binding_message=message)
    after = lambda t: f"{(t - answered) * 1000:.0f}"  # noqa: E731
    print(f"  restart {n} (down {offline:.1f} s): connected {after(timeline['connected'])}, "
          f"request received {after(timeline['received'])}, drawn {after(drawn)} ms after the "
          "provider's first answer")
    return (drawn - answered) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--gap", type=float, default=0.3,
                        help="seconds between a card's withdrawal and the next request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        with ProviderProcess(work / "provider").setup() as provider:
            app = AppRemote(work / "device-data", work / "app.log")
            try:
                enroll_from_qr_image(app, provider, work)
                requests_to_cards(provider, app, args.requests, args.gap)
                idle_cpu(app)
                restarts = [restart(provider, app, n, offline=1 + 4 * random.random())
                            for n in range(args.restarts)]
                if restarts:
                    print(f"provider restart -> new request's card drawn, {len(restarts)} restarts "
                          f"(ms): {', '.join(f'{r:.0f}' for r in restarts)}; max {max(restarts):.0f}"
                          f"  [{load()}]")
            finally:
                app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
