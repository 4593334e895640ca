"""Signed authentication requests (CIBA Core 1.0 §7.1.1).

The client sends its authentication request parameters as the claims of a JWT, signed with a
key of its registered JWKS (or ``jwks_uri``), in the ``request`` form parameter. Checks, each
an ``invalid_request`` (400, CIBA §13):

- signed with RS256, PS256 or ES256 (``none`` and the HMAC algorithms never: anyone who knows
  the client secret could sign), PS256 or ES256 for FAPI-CIBA clients, and the registered
  ``backchannel_authentication_request_signing_alg`` when the client has one (CIBA §4);
- ``aud`` is (or contains) the issuer, ``iss`` is the client_id (§7.1.1);
- ``exp``, ``iat``, ``nbf`` and ``jti`` are present (§7.1.1); ``exp`` has not passed and is at
  most 60 minutes after ``nbf``; ``nbf`` is not in the future (beyond the clock skew) and not
  more than 60 minutes in the past (FAPI-CIBA §5.2.2, applied to every client);
- the ``jti`` is used once, until ``exp``;
- the authentication request parameters appear only inside the request object.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Mapping

from joserfc import jws, jwt
from joserfc.errors import JoseError

from .. import jsonsafe
from ..storage import replay
from . import errors
from .fapi import FAPI_ALGS

if TYPE_CHECKING:
    from ..ports import ProviderCore
    from .clients import RegisteredClient

#: Algorithms a request object may be signed with (asymmetric only).
REQUEST_OBJECT_ALGS = ("RS256", "PS256", "ES256")
MAX_LIFETIME = 3600  # seconds from nbf to exp
MAX_AGE = 3600  # how far in the past nbf may be

#: The authentication request parameters of CIBA §7.1 (they belong inside the request object).
AUTHENTICATION_PARAMETERS = ("scope", "client_notification_token", "acr_values",
                             "login_hint_token", "id_token_hint", "login_hint",
                             "binding_message", "user_code", "requested_expiry",
                             "authorization_details")
#: Claims of the JWT itself, not request parameters.
JWT_CLAIMS = ("iss", "aud", "exp", "iat", "nbf", "jti", "sub")


def allowed_algorithms(client: "RegisteredClient") -> list[str]:
    registered = client.row.backchannel_authentication_request_signing_alg
    algs = [registered] if registered else list(REQUEST_OBJECT_ALGS)
    if client.row.fapi_ciba:
        algs = [a for a in algs if a in FAPI_ALGS]
    return algs


def unpack(provider: "ProviderCore", client: "RegisteredClient",
           form: Mapping[str, str]) -> dict[str, str]:
    """The authentication request parameters carried by the verified request object."""
    outside = [k for k in AUTHENTICATION_PARAMETERS if k in form]
    if outside:
        # CIBA §7.1.1: with a signed request, the parameters are sent only inside it.
        raise errors.InvalidRequestError("Parameters outside the request object: "
                                         + " ".join(outside))
    claims = _verify(provider, client, form["request"])
    params: dict[str, str] = {}
    for name in AUTHENTICATION_PARAMETERS:
        if name not in claims or claims[name] is None:
            continue
        value = claims[name]
        if name == "authorization_details":
            params[name] = json.dumps(value) if not isinstance(value, str) else value
        elif name == "requested_expiry" and isinstance(value, int) \
                and not isinstance(value, bool):
            params[name] = str(value)  # CIBA §7.1.1: a JSON number in the request object
        elif isinstance(value, str):
            params[name] = value
        else:
            raise errors.InvalidRequestError(f"Request object claim {name} has the wrong type")
    return params


def _verify(provider: "ProviderCore", client: "RegisteredClient", token: str) -> dict:
    algs = allowed_algorithms(client)
    if not jsonsafe.compact_jws_ok(token, provider.settings.json_max_depth):
        # Hostile segments (nested 50,000 deep, NaN, 1e400) fail as a bad object, not a 500.
        raise errors.InvalidRequestError("The request object is not a signed JWT")
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError):
        raise errors.InvalidRequestError("The request object is not a signed JWT") from None
    if header.get("alg") not in algs:
        raise errors.InvalidRequestError(
            "The request object must be signed with one of " + ", ".join(algs))
    decoded = None
    for refresh in (False, True):  # a key the client published since we last looked
        try:
            keys = client.public_keys(refresh)
        except LookupError as exc:  # its jwks_uri cannot be fetched
            raise errors.InvalidRequestError(
                f"The request object cannot be verified: {exc}") from None
        try:
            decoded = jwt.decode(token, keys, algorithms=algs)
            break
        except (JoseError, ValueError, TypeError, KeyError):
            continue
    if decoded is None:
        raise errors.InvalidRequestError(
            "The request object's signature does not verify with the client's keys")
    claims = decoded.claims
    _check_claims(provider, client, claims)
    return claims


def _check_claims(provider: "ProviderCore", client: "RegisteredClient", claims: dict) -> None:
    now = provider.clock.now()
    skew = provider.settings.clock_skew
    missing = [c for c in ("aud", "iss", "exp", "iat", "nbf", "jti") if c not in claims]
    if missing:
        raise errors.InvalidRequestError("The request object lacks " + ", ".join(missing))
    aud = claims["aud"]
    if not (aud == provider.issuer or (isinstance(aud, list) and provider.issuer in aud)):
        raise errors.InvalidRequestError("The request object's aud is not this issuer")
    if claims["iss"] != client.client_id:
        raise errors.InvalidRequestError("The request object's iss is not the client_id")
    times = {c: claims[c] for c in ("exp", "iat", "nbf")}
    if not all(jsonsafe.finite_number(v) for v in times.values()):
        raise errors.InvalidRequestError("exp, iat and nbf must be numbers")
    exp, nbf = times["exp"], times["nbf"]
    if exp <= now - skew:
        raise errors.InvalidRequestError("The request object has expired")
    if exp - nbf > MAX_LIFETIME:
        raise errors.InvalidRequestError("The request object's exp is more than 60 minutes "
                                         "after its nbf")
    if nbf > now + skew:
        raise errors.InvalidRequestError("The request object is not valid yet (nbf)")
    if nbf < now - MAX_AGE:
        raise errors.InvalidRequestError("The request object's nbf is more than 60 minutes "
                                         "in the past")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 200:
        raise errors.InvalidRequestError("The request object's jti must be a string")
    # One prepared statement in its own transaction (bc-authorize's fast path, issue 9).
    if not replay.use_once_now(provider.db, f"request_object:{client.client_id}:{jti}",
                               exp + skew, now):
        raise errors.InvalidRequestError("The request object's jti was already used")
