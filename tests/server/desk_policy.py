"""A deployment's CIBA policy, as docs/extending.md shows it: every hook overridden. Used by
tests/server/test_policy.py in-process and, through CIBA_POLICY, by a real server process."""

from __future__ import annotations

import re

from server.oauth.errors import AccessDeniedError
from server.oauth.policy import CibaPolicy, PolicyContext
from server.storage.models import User

#: Staff numbers the desks type, as a deployment's own directory would hold them.
STAFF = {"E-1001": "alice", "E-1002": "bob"}
DESK_MESSAGE = re.compile(r"^[A-Z]{4}-[0-9]{1,4}$")


class DeskPolicy(CibaPolicy):
    def resolve_login_hint(self, ctx: PolicyContext, login_hint: str) -> User | None:
        username = STAFF.get(login_hint.strip().upper())
        return ctx.provider.directory.user_by_username(username) if username else None

    def resolve_login_hint_token(self, ctx: PolicyContext, claims: dict) -> User | None:
        return self.resolve_login_hint(ctx, str(claims.get("staff_number", "")))

    def id_token_hint_subject(self, ctx: PolicyContext, claims: dict) -> str | None:
        # Only ID tokens from the last hour name someone (a shared desk forgets quickly).
        fresh = claims.get("iat", 0) >= ctx.provider.clock.now() - 3600
        return claims["sub"] if fresh else None

    def verify_user_code(self, ctx: PolicyContext, user: User, user_code: str) -> bool:
        return user_code == f"PIN-{user.username}"  # the deployment's own PIN store

    def validate_binding_message(self, ctx: PolicyContext, message: str) -> str | None:
        if not DESK_MESSAGE.match(message):
            return "binding_message must look like DESK-12"
        return None

    def validate_authorization_details(self, ctx: PolicyContext, details: list[dict]) -> str | None:
        unknown = sorted({d["type"] for d in details} - {"loan_renewal"})
        return f"authorization_details type not offered: {', '.join(unknown)}" if unknown else None

    def validate_request_context(self, ctx: PolicyContext, user: User) -> str | None:
        if not (user.email or "").endswith("@library.example"):
            raise AccessDeniedError("Only library staff sign in at the desk", status_code=403)
        if ctx.params.get("acr_values") == "urn:example:vault":
            return "the vault is not served by this provider"
        return None

    def choose_channel(self, ctx: PolicyContext, user: User) -> str:
        return "console"  # desks answer on the approval page, whatever the person enrolled

    def consent_text(self, ctx: PolicyContext, scope: str) -> str:
        if scope == "openid":
            return "Prove it is you at the library desk"
        return super().consent_text(ctx, scope)
