"""One error class per error code of CIBA Core 1.0 §11 and §13 and RFC 6749 §5.2, with its status.

Built on Authlib's OAuth2Error so Authlib's endpoints and ours answer in the same JSON format.
Descriptions must stay within RFC 6749's error_description character set (no double quotes).
"""

from __future__ import annotations

from functools import lru_cache

from authlib.oauth2 import base as _authlib_base
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError as _AccessDenied,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc8628.errors import AuthorizationPendingError, ExpiredTokenError, SlowDownError

__all__ = [
    "OAuth2Error", "InvalidRequestError", "InvalidScopeError", "InvalidClientError",
    "InvalidGrantError", "UnauthorizedClientError", "UnsupportedGrantTypeError",
    "AccessDeniedError", "ExpiredLoginHintTokenError", "UnknownUserIdError",
    "MissingUserCodeError", "InvalidUserCodeError", "InvalidBindingMessageError",
    "AuthorizationPendingError", "SlowDownError", "ExpiredTokenError", "TransactionFailedError",
    "TooManyPendingError",
]


class AccessDeniedError(_AccessDenied):
    """CIBA §13 (403 at the backchannel endpoint) and §11 (400 at the token endpoint)."""

    status_code = 400


class ExpiredLoginHintTokenError(OAuth2Error):
    """CIBA §13: the login_hint_token provided in the authentication request is not valid because it has expired."""

    error = "expired_login_hint_token"


class UnknownUserIdError(OAuth2Error):
    """CIBA §13: the OP is not able to identify which end-user the Client wishes to be authenticated."""

    error = "unknown_user_id"


class MissingUserCodeError(OAuth2Error):
    """CIBA §13: user_code is required but was missing from the request."""

    error = "missing_user_code"


class InvalidUserCodeError(OAuth2Error):
    """CIBA §13: user_code was invalid."""

    error = "invalid_user_code"


class InvalidBindingMessageError(OAuth2Error):
    """CIBA §13: the binding message is invalid or unacceptable for use in the context of the given request."""

    error = "invalid_binding_message"


class TransactionFailedError(OAuth2Error):
    """CIBA §11: the OpenID Provider encountered an unexpected condition."""

    error = "transaction_failed"


class TooManyPendingError(OAuth2Error):
    """429 (RFC 6585 §4) at the backchannel endpoint: the user or the client already has as many
    pending requests as the provider allows. ``slow_down`` is the CIBA/RFC 8628 code for "back
    off"; Retry-After says when the oldest pending request ends (issue 13 limits)."""

    error = "slow_down"
    status_code = 429

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = max(1, int(retry_after))

    def get_headers(self):
        return super().get_headers() + [("Retry-After", str(self.retry_after))]


def safe_description(text: str, limit: int = 200) -> str:
    """Text for error_description: RFC 6749 §5.2 allows printable ASCII without " and \\
    (Authlib raises ValueError otherwise); anything else, e.g. an echoed parameter name, is ?."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?"
                   for c in text[:limit])


def _remember_description_checks() -> None:
    """Authlib checks every error_description's characters when the error is made (one set and
    a scan per call: a tenth of a pending poll). Descriptions are nearly always the same few
    constants, so the check's answer is remembered per text (bounded). Same answers, same
    ValueError for a bad one."""
    check = _authlib_base.invalid_error_characters
    if not getattr(check, "remembered", False):
        cached = lru_cache(maxsize=512)(check)

        def remembered(text: str) -> list[str]:
            return list(cached(text))

        remembered.remembered = True  # type: ignore[attr-defined]
        _authlib_base.invalid_error_characters = remembered


_remember_description_checks()
