"""Operations endpoints: ``/healthz`` (the process answers), ``/readyz`` (the database and, when
configured, Redis and Gotify answer), ``/metrics`` (Prometheus text, server/metrics.py) and
``/openapi.json`` (the API description, server/openapi/).

``/healthz`` is open to everyone (load balancers); ``/readyz`` and ``/metrics`` are open on
loopback and otherwise need ``Authorization: Bearer <CIBA_OPS_TOKEN>`` (403 when no token is
set, 401 for a wrong one). Every request is counted here for the metrics.
"""

from __future__ import annotations

import ipaddress
import time

from flask import Blueprint, Flask, Response, abort, g, jsonify, request
from sqlalchemy import text

from .. import metrics
from ..security import equal
from .context import current_provider

bp = Blueprint("ops", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_count)


def _start_timer() -> None:
    g.ops_started = time.perf_counter()


def _count(response: Response) -> Response:
    endpoint = request.endpoint or "unmatched"
    started = g.get("ops_started")
    # a socket's life is no latency
    seconds = None if started is None or endpoint == "device.websocket" \
        else time.perf_counter() - started
    metrics.request_done(endpoint, request.method, response.status_code, seconds)
    return response


def _guard() -> None:
    """Loopback, or the operations bearer token."""
    try:
        if ipaddress.ip_address(request.remote_addr or "").is_loopback:
            return
    except ValueError:
        pass
    token = current_provider().settings.ops_token
    if not token:
        abort(403, "Served on loopback only; set CIBA_OPS_TOKEN to allow bearer access.")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not equal(sent.strip(), token):
        response = jsonify(error="invalid_token", error_description="Bearer token required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        abort(response)


@bp.get("/healthz")
def healthz():
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz():
    _guard()
    p = current_provider()
    checks = {"database": _check(lambda: _database(p))}
    if p.settings.redis_url:
        checks["redis"] = _check(lambda: _redis(p.settings.redis_url))
    gotify = p.gotify
    if gotify is not None:
        health = gotify.health()
        checks["gotify"] = "ok" if health.ok else health.text
    ready = all(v == "ok" for v in checks.values())
    response = jsonify(status="ready" if ready else "unready", checks=checks)
    response.status_code = 200 if ready else 503
    return _no_store(response)


@bp.get("/metrics")
def metrics_text():
    _guard()
    return _no_store(Response(metrics.exposition(current_provider()),
                              content_type=metrics.CONTENT_TYPE))


@bp.get("/openapi.json")
def openapi():
    from ..openapi import document

    p = current_provider()
    response = jsonify(document(p.issuer, p.settings))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _check(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # a failing dependency is an answer here, not an error
        return f"unreachable ({type(exc).__name__})"


def _database(p) -> None:
    with p.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


_redis_clients: dict = {}


def _redis(url: str) -> None:
    import redis

    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2,
                                                            socket_timeout=2)
    client.ping()


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
