"""Repository of authentication devices and their one-time enrollment codes."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from .models import Device, EnrollmentCode, User


# -- enrollment codes ----------------------------------------------------------------------
def add_enrollment_code(s: Session, code_hash: str, user_id: str, now: float,
                        expires_at: float) -> EnrollmentCode:
    row = EnrollmentCode(code_hash=code_hash, user_id=user_id, created_at=now,
                         expires_at=expires_at)
    s.add(row)
    s.flush()
    return row


def consume_enrollment_code(s: Session, code_hash: str, now: float) -> str | None:
    """Mark an unused, unexpired code used; its user_id, or None. Only one caller wins."""
    result = s.execute(update(EnrollmentCode).where(
        EnrollmentCode.code_hash == code_hash, EnrollmentCode.used_at.is_(None),
        EnrollmentCode.expires_at > now).values(used_at=now))
    if result.rowcount != 1:
        return None
    return s.scalar(select(EnrollmentCode.user_id).where(EnrollmentCode.code_hash == code_hash))


def release_enrollment_code(s: Session, code_hash: str) -> None:
    """Give a consumed code back when enrollment could not finish (a push channel failed)."""
    s.execute(update(EnrollmentCode).where(EnrollmentCode.code_hash == code_hash)
              .values(used_at=None))


# -- devices -------------------------------------------------------------------------------
def add(s: Session, device: Device) -> Device:
    s.add(device)
    s.flush()
    return device


def get(s: Session, device_id: str) -> Device | None:
    return s.get(Device, device_id)


def active(s: Session, device_id: str) -> Device | None:
    device = s.get(Device, device_id)
    return device if device is not None and device.revoked_at is None else None


def for_user(s: Session, user_id: str, *, include_revoked: bool = False) -> list[Device]:
    q = select(Device).where(Device.user_id == user_id)
    if not include_revoked:
        q = q.where(Device.revoked_at.is_(None))
    return list(s.scalars(q.order_by(Device.created_at.desc())))


def listing(s: Session, username: str | None = None) -> list[tuple[Device, User]]:
    """Devices with their users (all users, or one), newest first, revoked ones included."""
    q = select(Device, User).join(User, User.id == Device.user_id)
    if username is not None:
        q = q.where(User.username == username)
    return [(d, u) for d, u in s.execute(q.order_by(User.username, Device.created_at.desc()))]


def revoke(s: Session, device_id: str, now: float, *, user_id: str | None = None) -> Device | None:
    """Revoke an active device (of ``user_id`` when given); the device, or None if none was."""
    q = update(Device).where(Device.id == device_id, Device.revoked_at.is_(None))
    if user_id is not None:
        q = q.where(Device.user_id == user_id)
    if s.execute(q.values(revoked_at=now)).rowcount != 1:
        return None
    return s.get(Device, device_id, populate_existing=True)


def revoked_since(s: Session, since: float) -> list[str]:
    return list(s.scalars(select(Device.id).where(Device.revoked_at.is_not(None),
                                                  Device.revoked_at >= since)))


def touch_many(s: Session, seen: dict[str, float]) -> None:
    """last_seen_at for several devices in one statement (executemany)."""
    s.connection().execute(
        update(Device.__table__).where(Device.__table__.c.id == bindparam("device_id"))
        .values(last_seen_at=bindparam("seen_at")),
        [{"device_id": d, "seen_at": t} for d, t in seen.items()])


def touch(s: Session, device_id: str, now: float) -> None:
    # last_seen_at is shown to people only: no cache depends on it (versions.py).
    s.execute(update(Device).where(Device.id == device_id).values(last_seen_at=now),
              execution_options={"directory_neutral": True})
