"""Console: the audit log (/admin/audit), newest first, filtered by event, actor, user, client
and time, 100 events a page; ``ciba-provider audit export`` gives the same as JSON lines."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, request

from .. import audit
from ..storage import audit as audit_repo, users
from .context import current_provider
from .operator import operator_required, page

bp = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")

PAGE_SIZE = 100


def _day(text: str, end: bool = False) -> float | None:
    """Epoch of a yyyy-mm-dd date (UTC); with ``end`` the start of the next day."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return day.timestamp() + (86400 if end else 0)


@bp.get("/")
@operator_required
def index():
    p = current_provider()
    args = request.args
    before = args.get("before", "")
    f = audit_repo.AuditFilter(
        event=args.get("event") if args.get("event") in audit.EVENTS else None,
        actor=args.get("actor", "").strip() or None,
        client_id=args.get("client", "").strip() or None,
        since=_day(args.get("since", "")), until=_day(args.get("until", ""), end=True),
        before_id=int(before) if before.isdigit() else None)
    unknown_user = False
    with p.db.session() as s:
        if args.get("user", "").strip():
            user = users.by_username(s, args["user"].strip())
            unknown_user = user is None
            f.user_id = user.id if user else "-"
        rows = audit_repo.newest(s, f, limit=PAGE_SIZE)
        names = audit_repo.usernames(s, {r.user_id for r in rows if r.user_id})
    events = [audit.as_dict(r, names.get(r.user_id or "")) for r in rows]
    older = dict(args, before=rows[-1].id) if len(rows) == PAGE_SIZE else None
    return page("admin_audit.html", events=events, labels=audit.EVENTS, args=args, older=older,
                unknown_user=unknown_user)
