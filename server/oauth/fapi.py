"""The FAPI-CIBA client profile (FAPI: Client Initiated Backchannel Authentication Profile,
§5.2.2), switched on per client (``clients add --fapi``).

A FAPI-CIBA client must: send signed authentication requests (§5.2.2-1); authenticate with
mutual TLS or private_key_jwt (FAPI 1 Advanced §5.2.2-14); sign with PS256 or ES256 only
(FAPI 1 Advanced §8.6); receive certificate-bound access tokens (FAPI 1 Advanced §5.2.2-5,
RFC 8705); use poll or ping, never push (§5.2.2-3 "shall not support CIBA push mode"); and give
the user a unique authorization context: a binding_message or authorization_details
(§5.2.2-2 / FAPI-CIBA §7.2). Registration refuses a FAPI client that breaks the static rules;
the backchannel endpoint refuses requests that break the others with invalid_request.
"""

from __future__ import annotations

from typing import Mapping

from . import errors

FAPI_ALGS = ("PS256", "ES256")
FAPI_AUTH_METHODS = ("private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth")
FAPI_DELIVERY_MODES = ("poll", "ping")


def registration_problem(auth_method: str, delivery_mode: str,
                         request_signing_alg: str | None, id_token_alg: str | None) -> str | None:
    """Why a client with these settings cannot be a FAPI-CIBA client; None when it can."""
    if auth_method not in FAPI_AUTH_METHODS:
        return "FAPI-CIBA clients authenticate with " + ", ".join(FAPI_AUTH_METHODS)
    if delivery_mode not in FAPI_DELIVERY_MODES:
        return "FAPI-CIBA forbids push mode; use poll or ping"
    for label, alg in (("request signing", request_signing_alg), ("ID token", id_token_alg)):
        if alg and alg not in FAPI_ALGS:
            return f"FAPI-CIBA allows only PS256 and ES256 ({label} algorithm {alg})"
    return None


def check_request(signed: bool, params: Mapping[str, str]) -> None:
    """The backchannel request rules of the profile that depend on the request itself."""
    if not signed:
        raise errors.InvalidRequestError("This client must send a signed authentication request "
                                         "(the request parameter)")
    if not params.get("binding_message") and not params.get("authorization_details"):
        raise errors.InvalidRequestError("This client must send a binding_message or "
                                         "authorization_details")
