"""Failed push deliveries: logged clearly (never with tokens) and kept for the operator page."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import metrics
from ..storage import notifications
from ..storage.models import PushFailure

if TYPE_CHECKING:
    from ..ports import ProviderCore

log = logging.getLogger("ciba.push")


class FailureLog:
    def __init__(self, provider: "ProviderCore", channel: str) -> None:
        self.p = provider
        self.channel = channel

    def record(self, operation: str, description: str, *, username: str | None = None,
               status: int | None = None) -> None:
        """Log one failure and store it (newest first, bounded); storing never raises."""
        metrics.delivery(self.channel, False)
        log.warning("%s push failed: %s for %s: %s %s", self.channel, operation,
                    username or "-", status if status is not None else "unreachable",
                    description)
        try:
            with self.p.db.session() as s:
                notifications.add_failure(s, PushFailure(
                    channel=self.channel, at=self.p.clock.now(), username=username,
                    operation=operation[:64], status=status, description=description[:500]))
        except Exception:
            log.exception("could not store a %s push failure", self.channel)

    def recent(self, limit: int = 20) -> list[PushFailure]:
        with self.p.db.session() as s:
            rows = notifications.recent_failures(s, limit, self.channel)
            s.expunge_all()
        return rows
