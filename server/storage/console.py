"""Read queries of the operator console: requests with their users and clients."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import CibaRequest, Client, User


@dataclass
class RequestView:
    id: str
    client_id: str
    client_name: str
    username: str
    binding_message: str | None
    scope: str
    delivery_mode: str
    status: str
    created_at: float
    expires_at: float
    decided_at: float | None
    decided_by: str | None


def _views(s: Session, q) -> list[RequestView]:
    rows = s.execute(q.join(User, User.id == CibaRequest.user_id)
                     .outerjoin(Client, Client.client_id == CibaRequest.client_id)
                     .add_columns(User.username, Client.name))
    return [RequestView(r.id, r.client_id, name or r.client_id, username, r.binding_message,
                        r.scope, r.delivery_mode, r.status, r.created_at, r.expires_at,
                        r.decided_at, r.decided_by) for r, username, name in rows]


def pending(s: Session, now: float, limit: int = 200) -> list[RequestView]:
    """Pending, unexpired requests, the ones expiring first on top."""
    return _views(s, select(CibaRequest).where(CibaRequest.status == "pending",
                                               CibaRequest.expires_at > now)
                  .order_by(CibaRequest.expires_at).limit(limit))


def recent_for_user(s: Session, user_id: str, limit: int = 20) -> list[RequestView]:
    return _views(s, select(CibaRequest).where(CibaRequest.user_id == user_id)
                  .order_by(CibaRequest.created_at.desc()).limit(limit))
