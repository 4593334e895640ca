"""Client-initiated cancel of a CIBA request: an extension of this provider, not CIBA.

CIBA Core 1.0 has no way for a consumption device to withdraw a request it no longer waits for
(the person walked away, pressed Cancel at the kiosk, or the console client was interrupted), so
the user's phone keeps asking. ``POST /bc-cancel`` with ``auth_req_id`` lets the client that
made the request end it: the client authenticates exactly as at the token endpoint (CIBA §7.1,
RFC 6749 §2.3), errors are RFC 6749 §5.2 JSON, and the request is ended through
``decisions.cancel`` (devices withdraw the card; a late decision is refused as cancelled).

Answers, so a client can cancel without first checking the state:

- 200 ``{"status": "cancelled"}``: it was pending, or approved with its tokens not yet fetched,
  and is now cancelled; or it was cancelled before (cancelling is idempotent, as revocation is
  in RFC 7009 §2.2);
- 400 ``invalid_grant``: unknown auth_req_id, another client's (as at the token endpoint, so a
  client learns nothing about others' requests), denied, or its tokens were already issued;
- 400 ``expired_token``: the request expired before the cancel arrived.

An approved request is cancelled too. Once approved, CIBA §11 leaves the auth_req_id to the
token endpoint, but the client that sent it may give up before using it (the person walked away
just as the phone said yes), and a grant its client has disowned should not stay redeemable: as
RFC 7009 lets a client revoke a grant it no longer needs, cancel revokes this one before any
token exists. Its later token requests get access_denied; the user's devices hear "cancelled"
(the app notes in History that nothing was shared).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ..storage import ciba_requests
from . import errors, request_ids
from .clients import CIBA_GRANT_TYPE, RegisteredClient
from .decisions import Outcome, cancel, state_of

if TYPE_CHECKING:
    from ..ports import ProviderCore

CANCEL_PATH = "/bc-cancel"
#: The discovery metadata name (provider-specific: no specification defines a cancel endpoint).
METADATA_NAME = "ciba_stack_backchannel_cancel_endpoint"


def cancel_request(provider: "ProviderCore", client: RegisteredClient,
                   form: Mapping[str, str]) -> dict:
    """Cancel the client's own request named by ``auth_req_id``; the response body."""
    if not client.check_grant_type(CIBA_GRANT_TYPE):
        raise errors.UnauthorizedClientError("The client is not registered for the CIBA grant type")
    auth_req_id = form.get("auth_req_id")
    if not auth_req_id:
        raise errors.InvalidRequestError("Missing auth_req_id")
    # read-only, no lock
    req = ciba_requests.find_by_hash(provider.db, request_ids.key(auth_req_id))
    if req is None or req.client_id != client.client_id:
        raise errors.InvalidGrantError("Unknown auth_req_id")
    state = _state(req, provider.clock.now())
    if state in ("pending", "approved"):
        outcome = cancel(provider, req.id, "client", approved_too=True)
        if outcome is Outcome.CANCELLED:
            return {"status": "cancelled"}
        # denied, exchanged or expired meanwhile
        req = ciba_requests.find_by_hash(provider.db, request_ids.key(auth_req_id))
        state = _state(req, provider.clock.now()) if req else "expired"
    if state == "cancelled":
        return {"status": "cancelled"}
    if state == "expired":
        raise errors.ExpiredTokenError("The authentication request has expired")
    if state == "exchanged":
        raise errors.InvalidGrantError("The tokens of this request were already issued")
    raise errors.InvalidGrantError(f"The authentication request was already {state}")


def _state(req, now: float) -> str:
    """As the token endpoint sees it: an approved request past its expiry is expired too."""
    state = state_of(req, now)
    return "expired" if state == "approved" and req.expires_at <= now else state
