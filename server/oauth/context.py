"""What the authorization server's grants, endpoints and client authentication use of the
provider (``AuthorizationServer.provider``), and the outbox that issues push-mode tokens.

It extends what the policy hooks see (``policy.PolicyProvider``, itself the core of
server/ports.py) with the OAuth services: the CIBA policy, signing keys, the polling tracker,
the token issuer, client lookup and the client-certificate CAs. ``server.provider.Provider``
satisfies it structurally, so this package never names the provider (no package circle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .policy import PolicyProvider

if TYPE_CHECKING:
    from .clients import RegisteredClient
    from .keys import KeyRing
    from .policy import CibaPolicy
    from .polling import PollTracker
    from .tokens import TokenIssuer


class OAuthProvider(PolicyProvider, Protocol):
    @property
    def policy(self) -> CibaPolicy: ...  # the CIBA policy hooks

    @property
    def keys(self) -> KeyRing: ...  # signing keys

    @property
    def polls(self) -> PollTracker: ...  # the last poll of each pending request (slow_down)

    @property
    def tokens(self) -> TokenIssuer: ...  # ID, access and refresh tokens

    @property
    def client_ca(self) -> Any: ...  # RFC 8705 §2.1: the CAs tls_client_auth accepts

    @property
    def scopes_supported(self) -> list[str]: ...

    def get_client(self, client_id: str) -> RegisteredClient | None:
        """The registered client, from the directory cache."""
        ...

    def assertion_audiences(self) -> list[str]:
        """RFC 7523 §3: the ``aud`` values a client assertion may name."""
        ...
