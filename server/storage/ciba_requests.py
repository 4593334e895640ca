"""Repository of CIBA requests (CIBA §7) and their decisions."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import CibaRequest


def add(s: Session, req: CibaRequest) -> CibaRequest:
    s.add(req)
    s.flush()
    return req


def by_auth_req_id_hash(s: Session, auth_req_id_hash: str, *, lock: bool = False) -> CibaRequest | None:
    q = select(CibaRequest).where(CibaRequest.auth_req_id_hash == auth_req_id_hash)
    if lock:
        q = q.with_for_update()
    return s.scalar(q)


def by_device_request_id(s: Session, device_request_id: str) -> CibaRequest | None:
    return s.scalar(select(CibaRequest).where(CibaRequest.device_request_id == device_request_id))


def by_approval_token_hash(s: Session, token_hash: str) -> CibaRequest | None:
    return s.scalar(select(CibaRequest).where(CibaRequest.approval_token_hash == token_hash))


def get(s: Session, request_id: str) -> CibaRequest | None:
    return s.get(CibaRequest, request_id)


def pending_for_user(s: Session, user_id: str, now: float) -> list[CibaRequest]:
    return list(s.scalars(select(CibaRequest).where(
        CibaRequest.user_id == user_id, CibaRequest.status == "pending",
        CibaRequest.expires_at > now).order_by(CibaRequest.created_at.desc())))


def decide(s: Session, request_id: str, status: str, decided_by: str, now: float) -> bool:
    """Atomically move a pending, unexpired request to approved/denied/cancelled; False if
    too late."""
    result = s.execute(update(CibaRequest).where(
        CibaRequest.id == request_id, CibaRequest.status == "pending",
        CibaRequest.expires_at > now).values(status=status, decided_by=decided_by, decided_at=now,
                                             auth_time=now if status == "approved" else None))
    return result.rowcount == 1


def withdraw_approval(s: Session, request_id: str, decided_by: str, now: float) -> bool:
    """An approved request whose tokens nobody has fetched becomes cancelled (its client
    withdrew it); False if they were fetched meanwhile or it expired. auth_time stays: the
    record still shows that the user approved."""
    result = s.execute(update(CibaRequest).where(
        CibaRequest.id == request_id, CibaRequest.status == "approved",
        CibaRequest.expires_at > now).values(status="cancelled", decided_by=decided_by,
                                             decided_at=now))
    return result.rowcount == 1


def mark_exchanged(s: Session, request_id: str) -> bool:
    """Single use of an approved auth_req_id (CIBA §11): only one caller wins."""
    result = s.execute(update(CibaRequest).where(
        CibaRequest.id == request_id, CibaRequest.status == "approved").values(status="exchanged"))
    return result.rowcount == 1


def record_poll(s: Session, req: CibaRequest, now: float, interval: int) -> None:
    req.last_poll_at = now
    req.interval = interval


def expired_pending(s: Session, now: float, limit: int = 500) -> list[CibaRequest]:
    return list(s.scalars(select(CibaRequest).where(
        CibaRequest.status == "pending", CibaRequest.expires_at <= now).limit(limit)))


def mark_expired(s: Session, request_ids: list[str]) -> None:
    if request_ids:
        s.execute(update(CibaRequest).where(CibaRequest.id.in_(request_ids),
                                            CibaRequest.status == "pending")
                  .values(status="expired"))
