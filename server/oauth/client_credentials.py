"""The client_credentials grant (RFC 6749 §4.4) on Authlib's grant class.

The client acts for itself: the access token's ``sub`` is its client_id (RFC 9068 §2.2), no ID
token and no refresh token are issued (RFC 6749 §4.4.3: "A refresh token SHOULD NOT be
included"), and the scope is limited to the non-user scopes the client was registered for.
"""

from __future__ import annotations

import uuid

from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant as _ClientCredentialsGrant

from . import errors
from .clients import AUTH_METHODS, USER_SCOPES
from .mtls import binding_for
from .tokens import Grant


class ClientCredentialsGrant(_ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_requested_scope(self) -> None:
        """RFC 6749 §3.3: invalid_scope for a scope the client may not have; openid and the
        other end-user scopes have no user to speak of here."""
        client = self.request.client
        requested = (self.request.payload.scope or "").split()
        allowed = [s for s in client.row.scope.split() if s not in USER_SCOPES]
        refused = [s for s in requested if s not in allowed]
        if refused:
            raise errors.InvalidScopeError("Scope not allowed for client_credentials: "
                                           + " ".join(refused))
        # RFC 6749 §3.3: without a scope the registered (non-user) scopes are the default.
        self.request.granted_scope = " ".join(dict.fromkeys(requested or allowed))

    def create_token_response(self):
        client = self.request.client
        grant = Grant(grant_id=uuid.uuid4().hex, client_id=client.client_id, user=None,
                      scope=self.request.granted_scope, auth_time=None,
                      x5t_s256=binding_for(client, self.request))
        token = self.server.provider.tokens.issue(grant, client, include_id_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER
