"""Ping and push delivery to the client's notification endpoint (CIBA §10.2, §10.3, §12).

Runs off the request path on a small worker pool: a slow or failing client endpoint never
blocks a decision. Attempts are bounded; failures are logged without tokens.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import requests

from ..storage import ciba_requests, clients as client_repo, users
from . import netguard
from .tokens import Grant

if TYPE_CHECKING:
    from ..provider import Provider
    from ..storage.models import CibaRequest

log = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT = 5.0


class NotificationDelivery:
    def __init__(self, provider: "Provider", workers: int = 4) -> None:
        self.p = provider
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ciba-notify")
        self.session = requests.Session()

    def __call__(self, req: "CibaRequest") -> None:
        """Decision listener: called after a request is approved, denied, cancelled or expired.
        A client that cancelled its own request is not told about it."""
        if req.status == "cancelled" and req.decided_by == "client":
            return
        if req.delivery_mode in ("ping", "push") and req.auth_req_id_sealed:
            self.pool.submit(self._deliver, req.id)

    def _deliver(self, request_id: str) -> None:
        p = self.p
        with p.db.session() as s:
            req = ciba_requests.get(s, request_id)
            client = client_repo.get(s, req.client_id) if req else None
            if req is None or client is None or not client.notification_endpoint:
                return
            auth_req_id = p.box.open(req.auth_req_id_sealed)
            endpoint, token, mode = client.notification_endpoint, req.client_notification_token, \
                req.delivery_mode
            guarded = bool(client.self_registered)
        # A self-registered endpoint must still resolve to public addresses only (SSRF).
        reason = netguard.refuse_reason(endpoint) if guarded else None
        if reason:
            log.warning("not notifying client %s: its notification endpoint %s", req.client_id,
                        reason)
            return
        if mode == "ping":
            body = {"auth_req_id": auth_req_id}  # CIBA §10.2
        else:
            body = self._push_body(request_id, auth_req_id)
            if body is None:
                return
        self._post(endpoint, token, body)

    def _push_body(self, request_id: str, auth_req_id: str) -> dict | None:
        """CIBA §10.3.1 success payload, or §12 error payload for denial and expiry."""
        p = self.p
        with p.db.session() as s:
            req = ciba_requests.get(s, request_id)
            if req.status == "denied":
                return {"auth_req_id": auth_req_id, "error": "access_denied",
                        "error_description": "The end-user denied the authorization request"}
            if req.status == "cancelled":
                return {"auth_req_id": auth_req_id, "error": "access_denied",
                        "error_description": "The authentication request was cancelled"}
            if req.status == "expired":
                return {"auth_req_id": auth_req_id, "error": "expired_token",
                        "error_description": "The authentication request has expired"}
            if not ciba_requests.mark_exchanged(s, req.id):
                return None
            user = users.get(s, req.user_id)
            s.expunge(user)
            grant = Grant(grant_id=req.id, client_id=req.client_id, user=user, scope=req.scope,
                          auth_time=req.auth_time,
                          acr=req.acr_values.split()[0] if req.acr_values else None,
                          auth_req_id=auth_req_id)
        client = p.get_client(grant.client_id)
        tokens = p.tokens.issue(grant, client)
        return {"auth_req_id": auth_req_id, **tokens}

    def _post(self, endpoint: str, token: str | None, body: dict) -> bool:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.session.post(endpoint, json=body, headers=headers,
                                             timeout=TIMEOUT, allow_redirects=False)
                if response.status_code < 300:
                    return True
                log.warning("client notification endpoint %s answered %s (attempt %d/%d)",
                            endpoint, response.status_code, attempt, ATTEMPTS)
            except requests.RequestException as exc:
                log.warning("client notification endpoint %s failed: %s (attempt %d/%d)",
                            endpoint, type(exc).__name__, attempt, ATTEMPTS)
            time.sleep(0.5 * attempt)
        return False
