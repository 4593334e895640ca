"""``ciba-provider devices``: enroll (QR code in the terminal + link), list, revoke.

Revoking from the CLI reaches the server's sockets through the Redis bus when CIBA_REDIS_URL is
set; without Redis each server process notices within a few seconds (device housekeeping).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from .admin import AdminError
from .cli import provider_from
from .devices import qr
from .devices.service import DeviceService
from .devices.setup import install
from .storage import users


def register(subparsers, common: argparse.ArgumentParser) -> None:
    devices = subparsers.add_parser("devices", help="authentication devices").add_subparsers(
        dest="action", required=True)
    enroll = devices.add_parser("enroll", parents=[common],
                                help="print a one-time enrollment QR code and link for a user")
    enroll.add_argument("username")
    enroll.add_argument("--png", metavar="FILE", default=None, help="also write the QR code as PNG")
    enroll.set_defaults(func=cmd_enroll)
    listing = devices.add_parser("list", parents=[common], help="list devices (JSON)")
    listing.add_argument("username", nargs="?", default=None)
    listing.set_defaults(func=cmd_list)
    revoke = devices.add_parser("revoke", parents=[common], help="revoke a device now")
    revoke.add_argument("device_id")
    revoke.set_defaults(func=cmd_revoke)


def _service(args) -> DeviceService:
    return install(provider_from(args))


def cmd_enroll(args) -> int:
    service = _service(args)
    with service.p.db.session() as s:
        user = users.by_username(s, args.username)
    if user is None:
        raise AdminError(f"no user named {args.username!r}")
    offer = service.new_enrollment(user.id)
    if not service.p.settings.issuer:
        # The code carries the provider's address; the device connects there (protocol §1).
        print(f"warning: no issuer is set (CIBA_ISSUER or --issuer), so this code points to "
              f"{service.p.issuer}; a device elsewhere cannot reach that. Set the provider's "
              "public URL and enroll again.", file=sys.stderr)
    if args.png:
        try:
            with open(args.png, "wb") as fh:
                fh.write(qr.png_bytes(offer.uri))
        except OSError as exc:
            raise AdminError(f"cannot write {args.png}: {exc.strerror}") from None
    minutes = round((offer.expires_at - service.p.clock.now()) / 60)
    print(qr.terminal_text(offer.uri))
    print(f"Scan with the CIBA device app to enroll a device for {args.username} "
          f"(one use, valid {minutes} min), or paste this link into the app:")
    print(offer.uri)
    return 0


def cmd_list(args) -> int:
    service = _service(args)
    if args.username:
        with service.p.db.session() as s:
            if users.by_username(s, args.username) is None:
                raise AdminError(f"no user named {args.username!r}")
    rows = [{"device_id": d.id, "username": u.username, "display_name": d.display_name,
             "push": d.push_channel, "enrolled": _iso(d.created_at),
             "last_seen": _iso(d.last_seen_at), "revoked": _iso(d.revoked_at)}
            for d, u in service.listing(args.username)]
    print(json.dumps(rows, indent=2))
    return 0


def cmd_revoke(args) -> int:
    if not _service(args).revoke(args.device_id):
        raise AdminError(f"no active device {args.device_id!r}")
    print(f"revoked device {args.device_id}")
    return 0


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts else None
