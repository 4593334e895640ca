"""``ciba-provider audit export``: the audit log as JSON lines, oldest first, with filters."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from . import audit
from .admin import AdminError
from .cli import provider_from
from .storage import audit as audit_repo, users


def register(subparsers, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser("audit", help="the audit log").add_subparsers(
        dest="action", required=True)
    export = group.add_parser("export", parents=[common],
                              help="print the audit log as JSON lines (oldest first)")
    export.add_argument("--since", metavar="TIME", help="ISO 8601 date or time (UTC), or epoch")
    export.add_argument("--until", metavar="TIME", help="ISO 8601 date or time (UTC), or epoch")
    export.add_argument("--event", choices=sorted(audit.EVENTS))
    export.add_argument("--actor", metavar="TEXT", help="actors containing TEXT")
    export.add_argument("--user", metavar="USERNAME", help="events about this user")
    export.add_argument("--client", metavar="CLIENT_ID", help="events about this client")
    export.set_defaults(func=cmd_export)


def parse_time(text: str | None) -> float | None:
    """Epoch seconds from ``2026-01-31``, ``2026-01-31T12:00:00`` (UTC unless an offset is
    given) or a number."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AdminError(f"{text!r} is not a date, an ISO 8601 time or epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def cmd_export(args) -> int:
    p = provider_from(args)
    f = audit_repo.AuditFilter(event=args.event, actor=args.actor, client_id=args.client,
                               since=parse_time(args.since), until=parse_time(args.until))
    with p.db.session() as s:
        if args.user:
            user = users.by_username(s, args.user)
            if user is None:
                raise AdminError(f"no user named {args.user!r}")
            f.user_id = user.id
        names: dict[str, str | None] = {}
        for row in audit_repo.oldest_first(s, f):
            if row.user_id and row.user_id not in names:
                names[row.user_id] = audit_repo.usernames(s, {row.user_id}).get(row.user_id)
            sys.stdout.write(json.dumps(audit.as_dict(row, names.get(row.user_id or "")),
                                        separators=(",", ":")) + "\n")
    return 0
