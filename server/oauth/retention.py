"""Old CIBA requests deleted after ``request_retention_days`` past their expiry.

Why: every bc-authorize adds a row, and nothing else ever removes one, so the table (and the
SQLite file) grew without end. A request past its expiry can no longer be approved or exchanged
(CIBA §7.3 expired_token); what is kept for longer lives elsewhere: the audit trail
(audit_events), "I didn't request this" reports (request_reports) and the tokens.

Each serving process's outbox loop calls ``purge_some`` (every ``PURGE_EVERY`` seconds of that
loop). It reads first, so a provider with nothing to delete writes nothing, and deletes in small
transactions (``BATCH`` rows, at most ``BATCHES`` per call) so that a large backlog, after an
upgrade, never holds SQLite's one writer for long. Several processes may purge at once: a
DELETE of rows another process has just deleted deletes nothing, so no lease is needed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..storage import ciba_requests

if TYPE_CHECKING:
    from ..ports import ProviderCore

PURGE_EVERY = 60.0  # seconds between an outbox loop's purges
BATCH = 500
BATCHES = 20


def purge_some(provider: "ProviderCore") -> int:
    """Delete up to ``BATCH * BATCHES`` requests whose expiry is more than the retention ago;
    the number deleted. 0 days: keep every request."""
    days = provider.settings.request_retention_days
    if days <= 0:
        return 0
    before = provider.clock.now() - days * 86400
    deleted = 0
    for _ in range(BATCHES):
        with provider.db.session() as s:
            ids = ciba_requests.ended_before(s, before, BATCH)
            ciba_requests.delete_ids(s, ids)
        deleted += len(ids)
        if len(ids) < BATCH:
            break
        time.sleep(0)  # under gevent: the requests waiting on the loop go first
    return deleted
