"""Repository for "I didn't request this" reports (models.RequestReport)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import RequestReport, User


def for_request(s: Session, request_id: str) -> RequestReport | None:
    return s.scalar(select(RequestReport).where(RequestReport.request_id == request_id))


def add_once(s: Session, report: RequestReport) -> tuple[RequestReport, bool]:
    """Store ``report`` unless the request was reported before; (stored report, created)."""
    existing = for_request(s, report.request_id)
    if existing is not None:
        return existing, False
    try:
        with s.begin_nested():
            s.add(report)
    except IntegrityError:  # another device of the user reported it at the same moment
        existing = for_request(s, report.request_id)
        if existing is None:
            raise
        return existing, False
    return report, True


def recent(s: Session, limit: int = 50) -> list[tuple[RequestReport, str]]:
    """Newest reports first, each with the reporting user's username."""
    rows = s.execute(select(RequestReport, User.username)
                     .join(User, User.id == RequestReport.user_id)
                     .order_by(RequestReport.created_at.desc()).limit(limit))
    return [(report, username) for report, username in rows]


def count(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(RequestReport)) or 0
