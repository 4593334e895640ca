"""Prometheus metrics (prometheus-client), multiprocess-safe under gunicorn.

With PROMETHEUS_MULTIPROC_DIR set (server/gunicorn_conf.py sets it for every worker), each
process writes its values to files there and a scrape of any worker sums them all; without it
the values are this process's. The hot paths pay one counter increment and one histogram
observation per request; the number of pending requests is read from the database at scrape
time only.

- ``ciba_http_requests_total{endpoint,method,status}`` and
  ``ciba_http_request_duration_seconds{endpoint}``: endpoint is the Flask endpoint name
  (``ciba.token``), never the raw path, so ids in URLs do not make new series;
- ``ciba_decisions_total{outcome}``: approved, denied, cancelled, expired;
- ``ciba_pending_requests``: pending, unexpired CIBA requests (all processes share the DB);
- ``ciba_connected_devices``: open device WebSockets (summed over live processes);
- ``ciba_notification_deliveries_total{channel,result}``: websocket, gotify and client
  (ping/push) notifications, success or failure.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

# prometheus_client picks in-memory or file-backed values when first imported, which may be
# before server.gunicorn_conf sets PROMETHEUS_MULTIPROC_DIR (it reloads this module): pick again.
values.ValueClass = values.get_value_class()

if TYPE_CHECKING:
    from .ports import ProviderCore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Not in prometheus_client's default registry: exposition() builds the registry of a scrape.
REQUESTS = Counter("ciba_http_requests", "HTTP requests answered",
                   ["endpoint", "method", "status"], registry=None)
LATENCY = Histogram("ciba_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["endpoint"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
                    registry=None)
DECISIONS = Counter("ciba_decisions", "CIBA requests that ended, by outcome", ["outcome"],
                    registry=None)
CONNECTED = Gauge("ciba_connected_devices", "Open device WebSockets", multiprocess_mode="livesum",
                  registry=None)
DELIVERIES = Counter("ciba_notification_deliveries", "Notifications sent to devices or clients",
                     ["channel", "result"], registry=None)


_children: dict[tuple, tuple] = {}


def request_done(endpoint: str, method: str, status: int, seconds: float | None) -> None:
    """Count one answered request (and its latency); the labelled children are cached, since
    looking them up costs more than the increment itself (bench/metrics_overhead.py)."""
    key = (endpoint, method, status)
    pair = _children.get(key)
    if pair is None:
        if len(_children) > 5000:  # bounded: endpoints x methods x statuses is small
            _children.clear()
        pair = _children[key] = (REQUESTS.labels(endpoint, method, str(status)),
                                 LATENCY.labels(endpoint))
    pair[0].inc()
    if seconds is not None:
        pair[1].observe(seconds)


def delivery(channel: str, ok: bool, count: int = 1) -> None:
    DELIVERIES.labels(channel, "success" if ok else "failure").inc(count)


def decision(outcome: str) -> None:
    DECISIONS.labels(outcome).inc()


class PendingCollector:
    """ciba_pending_requests, counted in the database when scraped."""

    def __init__(self, provider: "ProviderCore") -> None:
        self.p = provider

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from .storage import ciba_requests

        count, _ = ciba_requests.pending_count(self.p.db, self.p.clock.now())
        yield GaugeMetricFamily("ciba_pending_requests", "Pending, unexpired CIBA requests",
                                value=count)


def exposition(provider: "ProviderCore") -> bytes:
    """The text a scrape receives: every process's metrics (multiprocess) or this one's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        for metric in (REQUESTS, LATENCY, DECISIONS, CONNECTED, DELIVERIES):
            registry.register(metric)
    registry.register(PendingCollector(provider))
    return generate_latest(registry)
