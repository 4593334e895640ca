"""What the provider's services need of it, stated as a protocol (PEP 544).

``server.provider.Provider`` is the composition root: it holds every service as a typed
attribute, so it sits above them all. The services (audit, metrics, sign-in guard, passkeys,
storage-backed channels, devices, the CIBA decisions and the outbox) need only what they stand
on: settings, clock, database, directory cache, secret box, issuer, the notifier and three of
the provider's answers. They name ``ProviderCore`` instead of ``Provider``, so the packages form
no circle, type-only imports included (tests/server/test_wiring.py). ``Provider`` satisfies it
structurally; nothing here runs.

Wider needs are stated beside their users, each extending this one: ``oauth.policy.
PolicyProvider`` (what CIBA policy hooks see) and ``oauth.context.OAuthProvider`` (what the
authorization server's grants and endpoints use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .clock import Clock
    from .config import Settings
    from .notify import Notifier
    from .security import SecretBox
    from .storage import Database
    from .storage.directory import Directory
    from .storage.models import CibaRequest, User


class ProviderCore(Protocol):
    """The provider as its services see it (members read-only: services never replace them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def issuer(self) -> str: ...

    @property
    def box(self) -> SecretBox: ...  # seals what is stored encrypted (auth_req_id, secrets)

    @property
    def db(self) -> Database: ...

    @property
    def directory(self) -> Directory: ...  # clients, users, devices cached per process

    @property
    def notifier(self) -> Notifier: ...  # channels that announce requests to the person

    def endpoint(self, path: str) -> str:
        """The absolute URL of one of the provider's paths."""
        ...

    def channel_mode_for(self, user: User) -> str:
        """The channel that announces the user's requests (the policy's ``choose_channel``)."""
        ...

    def describe_scope(self, scope: str) -> str:
        """The words a person reads for one scope (the policy's ``consent_text``)."""
        ...

    def after_decision(self, req: CibaRequest) -> None:
        """Tell the decision listeners (the outbox, the devices) that ``req`` was decided."""
        ...
