"""Colours, words and the icon shared by every screen (kv files import this module)."""

from __future__ import annotations

from pathlib import Path

BG = (0.953, 0.961, 0.976, 1)
SURFACE = (1, 1, 1, 1)
BORDER = (0.85, 0.87, 0.91, 1)
PRIMARY = (0.122, 0.353, 0.651, 1)
PRIMARY_DARK = (0.086, 0.243, 0.510, 1)
TINT = (0.910, 0.937, 0.984, 1)
ACCEPT = (0.118, 0.557, 0.243, 1)
DENY = (0.773, 0.133, 0.122, 1)
WARN = (0.851, 0.502, 0.020, 1)
TEXT = (0.106, 0.122, 0.141, 1)
MUTED = (0.376, 0.420, 0.478, 1)
WHITE = (1, 1, 1, 1)

#: One colour per account (Account.colour_index picks), for the chips on cards and rows.
ACCOUNT_COLOURS = [(0.122, 0.353, 0.651, 1), (0.560, 0.180, 0.600, 1), (0.000, 0.470, 0.450, 1),
                   (0.750, 0.300, 0.050, 1), (0.200, 0.450, 0.150, 1), (0.650, 0.150, 0.300, 1)]

OUTCOME_COLOURS = {"approved": ACCEPT, "denied": DENY, "cancelled": MUTED, "expired": MUTED,
                   "failed": WARN}
OUTCOME_WORDS = {"approved": "Approved", "denied": "Denied", "cancelled": "Cancelled",
                 "expired": "Expired", "failed": "Failed"}

STATE_WORDS = {
    "connected": "Connected",
    "connecting": "Connecting…",
    "offline": "Offline — retrying",
    "disconnected": "Offline — retrying",
    "refused": "Refused by the provider",
    "revoked": "This device was revoked",
    "stopped": "Stopped",
    "broken": "Key missing — remove and enroll again",
    "locked": "Locked — enter your PIN",
}
STATE_COLOURS = {"connected": ACCEPT, "connecting": WARN, "offline": WARN, "disconnected": WARN,
                 "refused": DENY, "revoked": DENY, "broken": DENY, "locked": WARN}

_ROOT = Path(__file__).resolve().parents[2]


def icon_path() -> str:
    """assets/icon.png of the source tree (the packaged copy next to this file as a fallback)."""
    for candidate in (_ROOT / "assets" / "icon.png", Path(__file__).with_name("icon.png")):
        if candidate.exists():
            return str(candidate)
    return ""


def state_words(state: str | None) -> str:
    return STATE_WORDS.get(state or "", "Not connected")


def state_colour(state: str | None) -> tuple:
    return STATE_COLOURS.get(state or "", MUTED)


def countdown(seconds: int | None) -> str:
    if seconds is None:
        return "No expiry given"
    if seconds <= 0:
        return "Expired"
    return f"Expires in {seconds // 60}:{seconds % 60:02d}"


def account_colour(account) -> tuple:
    return ACCOUNT_COLOURS[account.colour_index % len(ACCOUNT_COLOURS)] if account else MUTED


def account_chip(account) -> str:
    """The words on an account's chip: who and where (e.g. "alice @ op.example")."""
    return f"{account.username} @ {account.provider_label}" if account else "removed account"


def when(timestamp: float | None) -> str:
    """A date and time a person reads at a glance: "Mon 1 Dec, 14:03"."""
    import time
    if not timestamp:
        return "—"
    t = time.localtime(float(timestamp))
    return time.strftime("%a ", t) + str(t.tm_mday) + time.strftime(" %b, %H:%M", t)


def report_advice(client_name: str, account) -> str:
    """What to do after "I didn't request this" (docs/device-protocol.md §6a)."""
    base = account.base_url if account else "your provider"
    return (f"The provider's operators now know that {client_name} asked to sign you in "
            "without you. Nothing was shared: you denied it.\n\n"
            "Someone may know your username. If this happens again, change your password at "
            f"{base}/account and remove any device you do not recognise there.")
