"""Checks that refuse a production start that would misbehave quietly (issue 13).

``server.wsgi`` (gunicorn, or any WSGI server) runs ``check(settings)``; ``serve`` and ``demo``
derive an issuer from their host and port and run one process, so they skip it.

- an empty CIBA_ISSUER: every token's ``iss`` and every device URL would name 127.0.0.1;
- several gunicorn workers without CIBA_REDIS_URL: a push reaches only the sockets of the
  worker that handled the request (the event bus is in-process without Redis).
"""

from __future__ import annotations

import os
import sys

from .config import Settings


class StartupError(RuntimeError):
    """A setting is missing or inconsistent; the message says what to set."""


def check(settings: Settings) -> None:
    if not settings.issuer.strip():
        raise StartupError(
            "CIBA_ISSUER is empty: set it to the public URL clients and devices use, e.g. "
            "CIBA_ISSUER=https://op.example.com (only `ciba-provider serve` and `demo` derive "
            "one from their host and port)")
    workers = gunicorn_workers()
    if workers > 1 and not settings.redis_url:
        raise StartupError(
            f"gunicorn runs {workers} workers but CIBA_REDIS_URL is empty: each worker would "
            "push only to its own devices' sockets. Set CIBA_REDIS_URL=redis://HOST:6379/0 "
            "(docs/deployment.md), or run one worker (-w 1)")


def gunicorn_workers() -> int:
    """The worker count of the gunicorn running this process (0 outside gunicorn), read from
    its configuration the way gunicorn reads it (command line, GUNICORN_CMD_ARGS, config file,
    WEB_CONCURRENCY)."""
    if not os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return 0
    try:
        from gunicorn.app.wsgiapp import WSGIApplication

        cwd = os.getcwd()
        try:
            return int(WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg.workers)
        finally:
            os.chdir(cwd)
    except (SystemExit, Exception):  # an unreadable configuration: gunicorn itself started
        print("warning: could not read gunicorn's worker count", file=sys.stderr)
        return 0
