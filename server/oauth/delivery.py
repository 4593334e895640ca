"""What a ping or push notification says and how one attempt is sent (CIBA §10.2, §10.3, §12).

A decision on a ping or push request puts one row in the notification outbox, in the same
transaction as the decision (``enqueue``), so a crash can lose neither. The outbox worker
(server/oauth/outbox.py) sends it. Payloads:

- ping (§10.2): ``{"auth_req_id": ...}``; the client then fetches its tokens.
- push, denied / cancelled by an operator / expired (§12): the error payload.
- push, approved (§10.3.1): the tokens themselves. Push has no token-endpoint fallback, so they
  are made once, when the worker first picks the row up, in one transaction that also uses up
  the request (status exchanged) and stores the payload sealed (SecretBox); every retry sends
  exactly the same payload. Tokens are never issued twice and never lost.

An approval that its client withdraws (``POST /bc-cancel``) before the tokens were made drops
its row in the cancel's transaction (storage.outbox.withdraw): no ping and no tokens go out.

Each payload is sealed with the client_notification_token it is sent with; none of it is logged.
"""

from __future__ import annotations

import email.utils
import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy.orm import Session

from ..storage import ciba_requests, clients as client_repo, outbox as outbox_repo, users
from ..storage.models import NotificationOutbox
from . import netguard
from .tokens import Grant

if TYPE_CHECKING:
    from ..ports import ProviderCore
    from .context import OAuthProvider
    from ..storage.models import CibaRequest

log = logging.getLogger(__name__)

TIMEOUT = 10.0
#: Attempts go on until the request's expiry, and at least this long after the decision.
MIN_RETRY_WINDOW = 120.0

ERRORS = {  # CIBA §12 push error payloads
    "denied": ("access_denied", "The end-user denied the authorization request"),
    "cancelled": ("access_denied", "The authentication request was cancelled"),
    "expired": ("expired_token", "The authentication request has expired"),
}


def wanted(req: "CibaRequest") -> bool:
    """A decision the client hears of: not its own cancel (it knows), only ping and push."""
    if req.delivery_mode not in ("ping", "push") or not req.auth_req_id_sealed:
        return False
    return not (req.status == "cancelled" and req.decided_by == "client")


def enqueue(provider: "ProviderCore", s: Session, req: "CibaRequest", now: float) -> None:
    """Inside the transaction that decided ``req``: the delivery that announces it."""
    if not wanted(req):
        return
    client = client_repo.get(s, req.client_id)
    if client is None or not client.notification_endpoint:
        return
    outbox_repo.enqueue(s, NotificationOutbox(
        **outbox_values(provider, req, client.notification_endpoint, now)))


def enqueue_on(provider: "ProviderCore", cursor: Any, req: Any, now: float) -> None:
    """``enqueue`` on the cursor of a grouped decision's transaction (prepared statements,
    ``ciba_requests.finish_grouped``): the same row, committed with the decision."""
    if not wanted(req):
        return
    engine = provider.db.engine
    endpoint = outbox_repo.endpoint_on(cursor, engine, req.client_id)
    if endpoint:
        outbox_repo.enqueue_on(cursor, engine, outbox_values(provider, req, endpoint, now))


def outbox_values(provider: "ProviderCore", req: Any, endpoint: str, now: float) -> dict:
    """The outbox row announcing ``req``'s decision: a ping's payload and a push error's are
    sealed now; a push approval's tokens are made when the worker first picks it up."""
    payload = None
    if req.delivery_mode == "ping" or req.status in ERRORS:
        payload = seal(provider, req, body(provider, req))
    return dict(id=uuid.uuid4().hex, request_id=req.id, client_id=req.client_id,
                mode=req.delivery_mode, endpoint=endpoint, payload_sealed=payload,
                status="pending", attempts=0, next_attempt_at=now,
                deadline=max(req.expires_at, now + MIN_RETRY_WINDOW), created_at=now)


def body(provider: "ProviderCore", req: "CibaRequest") -> dict:
    auth_req_id = provider.box.open(req.auth_req_id_sealed)
    if req.delivery_mode == "ping":
        return {"auth_req_id": auth_req_id}
    error, description = ERRORS[req.status]
    return {"auth_req_id": auth_req_id, "error": error, "error_description": description}


def seal(provider: "ProviderCore", req: "CibaRequest", payload: dict) -> str:
    return provider.box.seal(json.dumps({"token": req.client_notification_token,
                                         "body": payload}))


def make_push_tokens(provider: "OAuthProvider", row_id: str) -> bool:
    """The §10.3.1 success payload, made once: uses up the request, issues the tokens and seals
    them into the outbox row in one transaction. False when the request cannot give tokens."""
    p = provider
    with p.db.session() as s:
        row = outbox_repo.get(s, row_id)
        if row is None or row.payload_sealed is not None:
            return row is not None
        req = ciba_requests.get(s, row.request_id)
        if req is None or not ciba_requests.mark_exchanged(s, req.id):
            return False
        user = users.get(s, req.user_id)
        auth_req_id = p.box.open(req.auth_req_id_sealed)
        grant = Grant(grant_id=req.id, client_id=req.client_id, user=user, scope=req.scope,
                      auth_time=req.auth_time,
                      acr=req.acr_values.split()[0] if req.acr_values else None,
                      auth_req_id=auth_req_id)
        client = p.get_client(grant.client_id)
        tokens = p.tokens.issue(grant, client, session=s)
        row.payload_sealed = seal(p, req, {"auth_req_id": auth_req_id, **tokens})
    return True


def guard(s: Session, row: NotificationOutbox) -> tuple[bool, str | None]:
    """(guarded, why not to send ``row`` now). A self-registered client's endpoint must still
    resolve to public addresses only (SSRF, oauth/netguard.py), checked right before each
    attempt, since DNS may have changed since registration, and its POST goes through
    ``netguard.public_only_session`` (checked again at connect time). Operator-registered
    clients are trusted."""
    client = client_repo.get(s, row.client_id)
    if client is None or not client.self_registered:
        return False, None
    reason = netguard.refuse_reason(row.endpoint)
    if reason:
        log.warning("not notifying client %s: its notification endpoint %s", row.client_id,
                    reason)
    return True, reason


@dataclass
class Attempt:
    """The outcome of one POST: delivered, or retry (not before ``retry_after`` seconds when
    the client said so), or a final failure."""

    delivered: bool = False
    retry: bool = False
    retry_after: float | None = None
    status: int | None = None
    error: str = ""


def post(http: requests.Session, endpoint: str, sealed: str, provider: "ProviderCore") -> Attempt:
    message = json.loads(provider.box.open(sealed))
    headers = {"Authorization": f"Bearer {message['token']}", "Content-Type": "application/json"}
    try:
        response = http.post(endpoint, data=json.dumps(message["body"]), headers=headers,
                             timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return Attempt(retry=True, error=f"unreachable ({type(exc).__name__})")
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return Attempt(delivered=True, status=status)
    if status >= 500:
        return Attempt(retry=True, status=status, error=f"HTTP {status}",
                       retry_after=retry_after(response.headers.get("Retry-After"),
                                               provider.clock.now()))
    # FAPI-CIBA §5.2.2: no retry after a 4xx (nor after a redirect, which is not followed).
    return Attempt(status=status, error=f"HTTP {status}")


def retry_after(value: str | None, now: float) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
