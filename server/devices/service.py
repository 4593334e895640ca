"""The provider side of the device protocol (docs/device-protocol.md), without HTTP.

``DeviceService`` enrolls devices with one-time codes (§1, §2), authenticates device calls
(§3), lists pending requests (§4), completes requests with signed decisions (§6) through
``oauth.decisions.decide`` (the only way a request completes), and revokes devices. The web
layer (server/web/device.py) only parses HTTP and turns ``DeviceError`` into responses.

Extension points for other push channels (Gotify):

- ``push_setups[name] = setup``: ``setup(user, device) -> channel dict`` runs at enrollment for
  devices that chose ``push=name``; it may set fields on the (not yet stored) ``Device``.
- ``on_revoke(listener)``: ``listener(device)`` after a device is revoked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlencode

from .. import audit
from ..notify import PushSetupError
from ..notify.websocket import WebSocketChannel
from ..oauth.decisions import Outcome, decide, state_of
from ..security import digest, new_id
from ..storage import ciba_requests, counters, devices as device_repo, replay, users
from ..storage.models import Device, User
from . import payloads, proofs, user_codes
from .last_seen import LastSeen
from .errors import AlreadyDecided, Expired, InvalidCode, InvalidRequest, InvalidToken, NotFound, \
    PushUnavailable, TooManyRequests

if TYPE_CHECKING:
    from ..ports import ProviderCore

log = logging.getLogger(__name__)

#: Failed enrollments allowed per client address in ENROLL_WINDOW seconds, then a lockout as long.
ENROLL_MAX_FAILURES = 10
ENROLL_WINDOW = 600
ENROLL_CODE_BYTES = 24  # 192 bits
MAX_DISPLAY_NAME = 100

PushSetup = Callable[[User, Device], dict]


@dataclass
class EnrollmentOffer:
    code: str
    uri: str  # ciba-enroll://enroll?base=...&code=... (the QR code's content)
    link: str  # {issuer}/device/enroll?code=... (same meaning, https form)
    expires_at: float


class DeviceService:
    def __init__(self, provider: "ProviderCore", channel: WebSocketChannel) -> None:
        self.p = provider
        self.channel = channel
        self.push_setups: dict[str, PushSetup] = {"websocket": self._websocket_setup}
        self._revoke_listeners: list[Callable[[Device], None]] = []
        self._seen = LastSeen()

    @property
    def _now(self) -> float:
        return self.p.clock.now()

    # -- enrollment (§1, §2) -----------------------------------------------------------------
    def new_enrollment(self, user_id: str) -> EnrollmentOffer:
        now = self._now
        code = new_id(ENROLL_CODE_BYTES)
        expires_at = now + self.p.settings.enrollment_code_lifetime
        with self.p.db.session() as s:
            device_repo.add_enrollment_code(s, digest(code), user_id, now, expires_at)
        uri = "ciba-enroll://enroll?" + urlencode({"base": self.p.issuer, "code": code})
        link = f"{self.p.issuer}/device/enroll?" + urlencode({"code": code})
        return EnrollmentOffer(code, uri, link, expires_at)

    def enroll(self, body: Any, remote_addr: str) -> dict:
        now = self._now
        rate_key = f"enroll_fail:{remote_addr}"
        self._check_rate(rate_key, now)
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object")
        code = body.get("code")
        if not isinstance(code, str) or not 0 < len(code) <= 200:
            raise InvalidRequest("code is missing")
        jwk = proofs.public_jwk(body.get("jwk"))
        name = body.get("display_name", "")
        if not isinstance(name, str) or len(name) > MAX_DISPLAY_NAME:
            raise InvalidRequest(f"display_name must be a string of at most {MAX_DISPLAY_NAME} "
                                 "characters")
        push = body.get("push") or "websocket"
        if not isinstance(push, str) or push not in self.push_setups:
            raise InvalidRequest(f"push must be one of {', '.join(sorted(self.push_setups))}")
        with self.p.db.session() as s:
            user_id = device_repo.consume_enrollment_code(s, digest(code), now)
            user = users.get(s, user_id) if user_id else None
        if user is None or user.disabled:
            self._record_failure(rate_key, now)
            raise InvalidCode("The enrollment code is unknown, expired or already used")
        secret = user_codes.new_secret()
        device = Device(id=new_id(32), user_id=user.id, display_name=name.strip() or "Device",
                        public_jwk=json.dumps(jwk), push_channel=push,
                        totp_secret=self.p.box.seal(secret), created_at=now)
        try:
            channel = self.push_setups[push](user, device)
        except Exception as exc:
            # The channel (e.g. Gotify) failed: the person keeps their code to try again.
            with self.p.db.session() as s:
                device_repo.release_enrollment_code(s, digest(code))
            if isinstance(exc, PushSetupError):
                raise PushUnavailable(str(exc)) from None
            raise
        with self.p.db.session() as s:
            device_repo.add(s, device)
            s.add(audit.entry("device_enrolled", "device:" + device.id, now, user_id=user.id,
                              device=device.id, name=device.display_name, push=push))
        log.info("device %s enrolled for %s (%s)", device.id[:8], user.username, push)
        return {"device_id": device.id, "issuer": self.p.issuer,
                "user": {"username": user.username, "name": user.name},
                "totp": {"secret": secret, "digits": user_codes.DIGITS,
                         "period": user_codes.PERIOD, "algorithm": user_codes.ALGORITHM},
                "channel": channel}

    def _websocket_setup(self, user: User, device: Device) -> dict:
        scheme, rest = self.p.issuer.split("://", 1)
        return {"type": "websocket",
                "url": ("wss" if scheme == "https" else "ws") + "://" + rest + "/device/ws"}

    def _check_rate(self, key: str, now: float) -> None:
        with self.p.db.session() as s:
            row = counters.counter(s, key, now, ENROLL_WINDOW)
            locked_until = row.locked_until
        if locked_until is not None and locked_until > now:
            raise TooManyRequests("Too many failed enrollment attempts; try again later",
                                  retry_after=int(locked_until - now) + 1)

    def _record_failure(self, key: str, now: float) -> None:
        with self.p.db.session() as s:
            row = counters.counter(s, key, now, ENROLL_WINDOW)
            row.count += 1
            if row.count >= ENROLL_MAX_FAILURES:
                row.locked_until = now + ENROLL_WINDOW

    # -- device authentication (§3) ----------------------------------------------------------
    def authenticate(self, token: str | None, method: str, path: str) -> Device:
        """The active device that signed ``token`` for this call, or InvalidToken."""
        if not token:
            raise InvalidToken("device authentication is missing")
        now = self._now
        compact = proofs.parse(token)  # once: the kid first, the signature below
        kid = proofs.unverified_kid(compact)
        device = self.p.directory.device(kid)  # cached; a revocation empties the cache
        if device is None or device.revoked_at is not None:
            raise InvalidToken("unknown or revoked device")
        if not self._user_active(device.user_id):
            # An operator disabled the person (server/admin_users.py): their devices stop too.
            raise InvalidToken("the device's account is disabled")
        claims = proofs.verify(compact, device.public_jwk, proofs.AUTH_TYP, device.id).claims
        keep_until = proofs.check_auth(claims, device.id, self.p.issuer, method, path, now,
                                       self.p.settings.clock_skew)
        if not replay.use_once_grouped(self.p.db, f"device_jti:{device.id}:{claims['jti']}",
                                       keep_until, now):
            raise InvalidToken("jti was already used")
        due = self._seen.note(device.id, now)
        if due:
            with self.p.db.session() as s:
                device_repo.touch_many(s, due)
        return device

    def flush_last_seen(self) -> None:
        """Write the last_seen_at times still held back (the housekeeper calls this)."""
        due = self._seen.take()
        if due:
            with self.p.db.session() as s:
                device_repo.touch_many(s, due)

    def is_active(self, device_id: str) -> bool:
        """Read afresh: a WebSocket asks this after it joined the hub, to catch a revocation
        made while it was connecting."""
        device = self.p.directory.device(device_id, fresh=True)
        return (device is not None and device.revoked_at is None
                and self._user_active(device.user_id))

    def _user_active(self, user_id: str) -> bool:
        user = self.p.directory.user(user_id)  # cached; disabling a user empties the cache
        return user is not None and not user.disabled

    # -- pending requests (§4) ---------------------------------------------------------------
    def pending(self, device: Device) -> list[dict]:
        rows = ciba_requests.pending_for_user(self.p.db, device.user_id, self._now)
        return [payloads.from_row(r, self.p.directory.client(r.client_id), "pending",
                                  self.p.describe_scope)
                for r in rows]

    def request(self, device: Device, request_id: str) -> dict:
        req = self._own_request(device, request_id)
        state = state_of(req, self._now)
        status = "approved" if state == "exchanged" else state
        return payloads.from_row(req, self.p.directory.client(req.client_id), status,
                                 self.p.describe_scope)

    def _own_request(self, device: Device, request_id: str):
        """The request (a read-only row: one prepared read, no session), if it is for this
        device's user."""
        req = ciba_requests.find_by_device_request_id(self.p.db, request_id) \
            if request_id else None
        if req is None or req.user_id != device.user_id:
            raise NotFound("no such request for this device's user")
        return req

    # -- decisions (§6) ----------------------------------------------------------------------
    def decide(self, device: Device, request_id: str, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("decision"), str):
            raise InvalidRequest('the body must be {"decision": "<decision jws>"}')
        now = self._now
        skew = self.p.settings.clock_skew
        req = self._own_request(device, request_id)
        claims = proofs.verify(body["decision"], device.public_jwk, proofs.DECISION_TYP,
                               device.id).claims
        proofs.check_common(claims, device.id, self.p.issuer, now, skew)
        approve = proofs.decision_of(claims, request_id, req.binding_message)
        state = state_of(req, now)
        if state == "expired":
            raise Expired("the request expired")
        if state != "pending":
            raise AlreadyDecided("the request was decided before",
                                 status={"exchanged": "approved"}.get(state, state))
        if not replay.use_once_grouped(self.p.db, f"device_jti:{device.id}:{claims['jti']}",
                                       claims["iat"] + skew + 1, now):
            raise InvalidToken("jti was already used")
        outcome = decide(self.p, req.id, approve, f"device:{device.id}", req.delivery_mode)
        if outcome in (Outcome.APPROVED, Outcome.DENIED):
            log.info("request %s %s by device %s", req.id[:8], outcome.value, device.id[:8])
            return {"request_id": request_id, "status": outcome.value}
        if outcome is Outcome.EXPIRED:
            raise Expired("the request expired")
        if outcome is Outcome.ALREADY_DECIDED:
            with self.p.db.session() as s:
                current = ciba_requests.get(s, req.id)
                status = current.status if current else "denied"
            raise AlreadyDecided("the request was decided before",
                                 status={"exchanged": "approved"}.get(status, status))
        raise NotFound("no such request for this device's user")

    # -- listing and revocation --------------------------------------------------------------
    def devices_of(self, user_id: str, include_revoked: bool = False) -> list[Device]:
        with self.p.db.session() as s:
            rows = device_repo.for_user(s, user_id, include_revoked=include_revoked)
            s.expunge_all()
        return rows

    def listing(self, username: str | None = None) -> list[tuple[Device, User]]:
        with self.p.db.session() as s:
            rows = device_repo.listing(s, username)
            s.expunge_all()
        return rows

    def revoke(self, device_id: str, user_id: str | None = None, actor: str | None = None) -> bool:
        """Revoke now: its sockets are dropped at once in every process (through the bus).
        ``actor`` is who asked, for the audit log (default: the command line's user)."""
        with self.p.db.session() as s:
            device = device_repo.revoke(s, device_id, self._now, user_id=user_id)
            if device is not None:
                s.add(audit.entry("device_revoked", actor or audit.cli_actor(), self._now,
                                  user_id=device.user_id, device=device.id,
                                  name=device.display_name))
                s.expunge(device)
        if device is None:
            return False
        self.channel.devices_revoked([device.id])
        for listener in self._revoke_listeners:
            try:
                listener(device)
            except Exception:
                log.exception("revoke listener failed for device %s", device.id[:8])
        log.info("device %s revoked", device.id[:8])
        return True

    def on_revoke(self, listener: Callable[[Device], None]) -> None:
        self._revoke_listeners.append(listener)

    # -- channel choice ----------------------------------------------------------------------
    def default_channel(self, user: User) -> str:
        """The push channel of the user's newest active device; console without one."""
        newest = self.p.directory.newest_device(user.id)
        if newest is None:
            return "console"
        chosen = newest.push_channel
        return chosen if chosen in self.p.notifier.channels else "websocket"
