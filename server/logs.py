"""Log output of a provider process: plain text lines, or one JSON object per line
(``CIBA_LOG_FORMAT=json``) for log collectors. Nothing here logs tokens; callers never pass them."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"[, "exception"]}``, one per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc)
                .isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """One stderr handler on the root logger in the chosen format (replacing ours, if any)."""
    if log_format not in ("text", "json"):
        raise ValueError(f"CIBA_LOG_FORMAT must be text or json, not {log_format!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "ciba", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.ciba = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
