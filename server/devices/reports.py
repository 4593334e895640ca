"""“I didn't request this”: a person tells the provider that a login request was not theirs.

``POST /device/requests/<request_id>/report`` (docs/device-protocol.md §6a), authenticated
like every device call (§3). The report is stored once per request for the operators
(/admin/reports), written to the audit log (event ``request_reported``) in the same transaction,
and logged as a warning. A request still pending is denied first: someone else is trying to
sign in as this person, so nothing of it may be approved afterwards.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import audit
from ..oauth.decisions import decide, state_of
from ..security import new_id
from ..storage import audit as audit_repo, ciba_requests, reports
from ..storage.models import Device, RequestReport
from .errors import NotFound

if TYPE_CHECKING:
    from ..ports import ProviderCore

log = logging.getLogger(__name__)


def report_request(provider: "ProviderCore", device: Device, request_id: str) -> tuple[dict, bool]:
    """Record the device user's report about their request ``request_id`` (the device request
    id); (answer body, created)."""
    now = provider.clock.now()
    with provider.db.session() as s:
        req = ciba_requests.by_device_request_id(s, request_id) if request_id else None
        if req is None or req.user_id != device.user_id:
            raise NotFound("no such request for this device's user")
        row_id, state = req.id, state_of(req, now)
    if state == "pending":
        decide(provider, row_id, False, f"device:{device.id}")
    with provider.db.session() as s:
        req = ciba_requests.get(s, row_id)
        status = {"exchanged": "approved"}.get(state_of(req, now), state_of(req, now))
        report, created = reports.add_once(s, RequestReport(
            id=new_id(16), request_id=req.id, user_id=req.user_id, device_id=device.id,
            client_id=req.client_id, binding_message=req.binding_message, request_status=status,
            created_at=now))
        if created:
            audit_repo.add(s, audit.entry(
                "request_reported", f"device:{device.id}", now, user_id=req.user_id,
                client_id=req.client_id, request=req.id, report=report.id, request_status=status))
        client = provider.directory.client(req.client_id)
        body = {"report_id": report.id, "request_id": request_id, "status": status,
                "client_name": (client.name or client.client_id) if client else req.client_id}
    if created:
        log.warning("user reported a sign-in request they did not make: client %s, request %s "
                    "(%s)", body["client_name"], row_id[:8], status)
    return body, created
