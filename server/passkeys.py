"""Passkeys (WebAuthn Level 2, with py_webauthn): a person adds one on the account page and
signs in with it on the sign-in and approval pages, instead of the password.

- Registration asks for a discoverable credential ("resident key") with user verification, so
  that sign-in needs no username: the browser offers the person's passkeys for this site.
- Every ceremony has its own random challenge (32 bytes), kept by the web layer in the session
  and used once (also recorded in ``used_jtis``, so a copied session cookie cannot replay it).
- Sign-in requires user verification (the passkey replaces the password, not a second factor),
  checks the origin and RP ID, and the signature counter where the authenticator keeps one.
- Only the public key is stored. A disabled user cannot sign in with a passkey either.

The RP ID is the issuer's host unless CIBA_WEBAUTHN_RP_ID says otherwise; the origin is the
issuer's origin unless CIBA_WEBAUTHN_ORIGIN does. Browsers allow WebAuthn on https, and on
http://localhost for development.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import webauthn
from webauthn.helpers import bytes_to_base64url, base64url_to_bytes
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, PublicKeyCredentialDescriptor,
                                      ResidentKeyRequirement, UserVerificationRequirement)

from . import audit
from .security import digest
from .storage import passkeys as repo, replay, users
from .storage.models import Passkey, User

if TYPE_CHECKING:
    from .ports import ProviderCore

log = logging.getLogger(__name__)

#: Milliseconds the browser gives the person to use their authenticator.
TIMEOUT_MS = 120_000
MAX_NAME = 100


class PasskeyError(ValueError):
    """A ceremony that did not verify; the message is safe to show."""


class Passkeys:
    def __init__(self, provider: "ProviderCore") -> None:
        self.p = provider
        issuer = urlsplit(provider.issuer)
        self.rp_id = provider.settings.webauthn_rp_id or issuer.hostname or "localhost"
        self.origin = (provider.settings.webauthn_origin or
                       f"{issuer.scheme}://{issuer.netloc}").rstrip("/")
        self.rp_name = "CIBA Provider"

    # -- registration (account page) -----------------------------------------------------------
    def registration_options(self, user: User) -> tuple[dict, bytes]:
        """Options for navigator.credentials.create() and the challenge to keep."""
        with self.p.db.session() as s:
            existing = repo.for_user(s, user.id)
        options = webauthn.generate_registration_options(
            rp_id=self.rp_id, rp_name=self.rp_name, user_name=user.username,
            user_id=uuid.UUID(hex=user.id).bytes if len(user.id) == 32 else user.id.encode(),
            user_display_name=user.name or user.username, timeout=TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(k.id))
                                 for k in existing])
        return json.loads(webauthn.options_to_json(options)), options.challenge

    def register(self, user: User, credential: Any, challenge: bytes, name: str) -> Passkey:
        self._spend(challenge)
        try:
            verified = webauthn.verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=self.rp_id,
                expected_origin=self.origin, require_user_verification=True)
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            log.info("passkey registration for %s refused: %s", user.username, exc)
            raise PasskeyError("The passkey could not be verified; try again.") from None
        transports = credential.get("response", {}).get("transports", []) \
            if isinstance(credential, dict) else []
        now = self.p.clock.now()
        row = Passkey(id=bytes_to_base64url(verified.credential_id), user_id=user.id,
                      public_key=bytes_to_base64url(verified.credential_public_key),
                      sign_count=verified.sign_count, created_at=now,
                      name=(name or "").strip()[:MAX_NAME] or "Passkey",
                      transports=" ".join(t for t in transports if isinstance(t, str))[:255])
        with self.p.db.session() as s:
            if repo.get(s, row.id) is not None:
                raise PasskeyError("This passkey is already registered.")
            repo.add(s, row)
            s.add(audit.entry("passkey_added", "user:" + user.username, now, user_id=user.id,
                              passkey=row.name))
            s.expunge(row)
        return row

    # -- sign-in (sign-in and approval pages) ----------------------------------------------------
    def authentication_options(self) -> tuple[dict, bytes]:
        """Options for navigator.credentials.get(): any of this site's passkeys (discoverable)."""
        options = webauthn.generate_authentication_options(
            rp_id=self.rp_id, timeout=TIMEOUT_MS,
            user_verification=UserVerificationRequirement.REQUIRED)
        return json.loads(webauthn.options_to_json(options)), options.challenge

    def authenticate(self, credential: Any, challenge: bytes) -> User:
        """The user whose passkey signed ``challenge``; PasskeyError otherwise."""
        self._spend(challenge)
        credential_id = credential.get("id") if isinstance(credential, dict) else None
        if not isinstance(credential_id, str) or len(credential_id) > 1400:
            raise PasskeyError("That passkey is not known here.")
        with self.p.db.session() as s:
            row = repo.get(s, credential_id)
            user = users.get(s, row.user_id) if row else None
            if row is not None:
                s.expunge(row)
            if user is not None:
                s.expunge(user)
        if row is None or user is None or user.disabled:
            raise PasskeyError("That passkey is not known here.")
        try:
            verified = webauthn.verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=self.rp_id,
                expected_origin=self.origin, credential_public_key=base64url_to_bytes(
                    row.public_key), credential_current_sign_count=row.sign_count,
                require_user_verification=True)
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            log.info("passkey sign-in for %s refused: %s", user.username, exc)
            raise PasskeyError("The passkey could not be verified; try again.") from None
        with self.p.db.session() as s:
            if not repo.used(s, row.id, row.sign_count, verified.new_sign_count,
                             self.p.clock.now()):
                raise PasskeyError("The passkey could not be verified; try again.")
        return user

    # -- the account page ------------------------------------------------------------------------
    def remove(self, user: User, credential_id: str) -> bool:
        with self.p.db.session() as s:
            row = repo.remove(s, user.id, credential_id)
            if row is None:
                return False
            s.add(audit.entry("passkey_removed", "user:" + user.username, self.p.clock.now(),
                              user_id=user.id, passkey=row.name))
        return True

    def _spend(self, challenge: bytes) -> None:
        """Each challenge works once, in every process."""
        now = self.p.clock.now()
        with self.p.db.session() as s:
            fresh = replay.use_once(s, "webauthn:" + digest(bytes_to_base64url(challenge)),
                                    now + TIMEOUT_MS / 1000 + 60, now)
        if not fresh:
            raise PasskeyError("This sign-in attempt was used already; start again.")
