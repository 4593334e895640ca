"""Repository of CIBA requests (CIBA §7) and their decisions."""

from __future__ import annotations

from sqlalchemy import func, select, update
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


def pending_count(s: Session, now: float, *, user_id: str | None = None,
                  client_id: str | None = None) -> tuple[int, float | None]:
    """(number of pending unexpired requests of a user or a client, the soonest expiry)."""
    q = select(func.count(), func.min(CibaRequest.expires_at)).where(
        CibaRequest.status == "pending", CibaRequest.expires_at > now)
    if user_id is not None:
        q = q.where(CibaRequest.user_id == user_id)
    if client_id is not None:
        q = q.where(CibaRequest.client_id == client_id)
    count, soonest = s.execute(q).one()
    return int(count), soonest


def decide(s: Session, request_id: str, status: str, decided_by: str, now: float) -> bool:
    """Atomically move a pending, unexpired request to approved/denied/cancelled; False if
    too late."""
    result = s.execute(update(CibaRequest).where(
        CibaRequest.id == request_id, CibaRequest.status == "pending",
        CibaRequest.expires_at > now).values(status=status, decided_by=decided_by, decided_at=now,
                                             auth_time=now if status == "approved" else None))
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
