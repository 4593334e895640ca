"""The printed result of bench/side_by_side.py: a Markdown table to paste into
docs/performance.md (medians over the rounds), the ratios, the CPU of each process, and issue
9's goals marked met or not."""

from __future__ import annotations

import datetime
import math
import os
import platform
from typing import Callable

LABELS = {"bc": "bc-authorize", "poll": "token polls on pending requests",
          "flows": "full flows", "bc-rate": "bc-authorize at the same rate",
          "poll-rate": "token polls at the same rate"}


def machine() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, Python "
            f"{platform.python_version()}, load average at the end {load:.1f}")


def fmt(value: float, digits: int = 0) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def render(results: dict, names: list[str], metrics: list[str], args,
           med: Callable[[list[dict], str], float]) -> str:
    def get(name: str, metric: str, key: str) -> float:
        return med(results.get((name, metric), []), key)

    lines = [f"Measured {datetime.date.today().isoformat()} on {machine()}; server "
             f"{args.server}; {args.rounds} alternating rounds of {args.duration} s, "
             f"{args.connections} connections, {args.loops} flow loops, "
             f"{getattr(args, 'rate', 0)} requests/s offered in the -rate runs; medians.", "",
             "| metric | " + " | ".join(names) + " |",
             "| --- |" + " --- |" * len(names)]
    for metric in metrics:
        label = LABELS[metric]
        lines.append(f"| {label} /s | " + " | ".join(
            fmt(get(n, metric, "answered_per_s")) for n in names) + " |")
        if metric != "flows":
            for key in ("p50_ms", "p99_ms"):
                lines.append(f"| {label} {key[:3]} ms | " + " | ".join(
                    fmt(get(n, metric, key), 1) for n in names) + " |")
    rss = {n: max((r["rss_mib"] for m in metrics for r in results.get((n, m), [])),
                  default=float("nan")) for n in names}
    lines.append("| RSS MiB (max) | " + " | ".join(fmt(rss[n]) for n in names) + " |")

    lines += ["", "CPU of each process (cores busy, median over runs):"]
    for name in names:
        for metric in metrics:
            runs = results.get((name, metric), [])
            if not runs:
                continue
            pids = sorted({pid for r in runs for pid in r["cpu"]})
            busy = [med([{"v": r["cpu"].get(pid)} for r in runs], "v") for pid in pids]
            shown = ", ".join(f"{b:.2f}" for b in busy if b >= 0.01) or "0"
            lines.append(f"- {name} {LABELS[metric]}: {shown}")

    lines += ["", "Goals (issue 9):"]

    def ratio(a: str, b: str, metric: str, key: str = "answered_per_s") -> float:
        x, y = get(a, metric, key), get(b, metric, key)
        return x / y if y and not math.isnan(x) and not math.isnan(y) else float("nan")

    def goal(text: str, value: float, target: float, lower_is_better: bool = False) -> None:
        if math.isnan(value):
            return
        met = value <= target if lower_is_better else value >= target
        lines.append(f"- {text}: {value:.2f} (goal {'≤' if lower_is_better else '≥'} "
                     f"{target}) {'MET' if met else 'NOT MET'}")

    # The -rate runs offer the same load to every target: their throughput is not compared.
    throughput = [m for m in metrics if not m.endswith("-rate")]
    for db in ("sqlite", "pg"):
        one = f"ours-{db}"
        if one not in names:
            continue
        for metric in ("bc", "poll"):
            goal(f"{one} {LABELS[metric]} / floor", ratio(one, "floor", metric), 0.9)
        goal(f"{one} full flows / peer", ratio(one, "peer", "flows"), 1.0)
        for metric in ("bc", "poll", "bc-rate", "poll-rate"):
            goal(f"{one} {LABELS[metric]} p99 / peer p99",
                 ratio(one, "peer", metric, "p99_ms"), 1.0, lower_is_better=True)
        two = f"ours-{db}-w2"
        if two in names:
            for metric in throughput:
                goal(f"{two} (whole machine) {LABELS[metric]} / peer",
                     ratio(two, "peer", metric), 1.0)
                lines.append(f"  - {one} -> {two} (1 -> 2 processes), {LABELS[metric]}: "
                             f"{fmt(ratio(two, one, metric), 2)}x")
    if "ours-sqlite-run" in names:  # the recommended one-host deployment (ciba-provider run)
        for metric in throughput:
            goal(f"ours-sqlite-run (whole machine) {LABELS[metric]} / peer",
                 ratio("ours-sqlite-run", "peer", metric), 1.0)
        for metric in ("bc", "poll", "bc-rate", "poll-rate"):
            goal(f"ours-sqlite-run {LABELS[metric]} p99 / peer p99",
                 ratio("ours-sqlite-run", "peer", metric, "p99_ms"), 1.0, lower_is_better=True)
    return "\n".join(lines)
