"""HTTPS for ``ciba-provider serve`` with mutual TLS (RFC 8705): the server's certificate, and a
request (not a requirement) for a client certificate, so one port serves clients with and
without certificates.

Python's ssl module verifies every certificate a client presents, with no hook to accept an
unknown one. So the trust store holds the CAs of ``--tls-client-ca`` (tls_client_auth) and the
self-signed certificates registered by self_signed_tls_client_auth clients; the latter are
reloaded from storage during a handshake when the directory version (storage/versions.py) has
changed since the last load, so a client registered while the server runs (by the CLI, the
console or RFC 7591, in any process) can connect at once, and otherwise at most once a second
(a key published at a client's jwks_uri may change without a write here). Trusting a self-signed certificate here lets it complete
the handshake only: which client it proves is decided per request (server/oauth/mtls.py), and
tls_client_auth accepts only certificates issued by the configured CAs.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import Encoding

from .oauth.mtls import SELF_SIGNED_TLS_CLIENT_AUTH, registered_self_signed, thumbprint
from .storage import clients as client_repo
from .storage import versions

if TYPE_CHECKING:
    from .provider import Provider

log = logging.getLogger(__name__)


class SelfSignedTrust:
    """Adds newly registered self-signed client certificates to a server SSLContext."""

    def __init__(self, provider: "Provider", context: ssl.SSLContext, min_gap: float = 1.0) -> None:
        self.p, self.context, self.min_gap = provider, context, min_gap
        self._known: set[str] = set()
        self._checked = 0.0
        self._version = -1
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Load certificates not yet trusted; returns how many were added."""
        with self._lock:
            version = versions.current(self.p.db, fresh=True)  # one indexed read
            if version == self._version and time.monotonic() - self._checked < self.min_gap:
                return 0
            self._checked, self._version = time.monotonic(), version
            added = 0
            for cert in self._registered():
                tp = thumbprint(cert)
                if tp in self._known:
                    continue
                self.context.load_verify_locations(cadata=cert.public_bytes(Encoding.PEM).decode())
                self._known.add(tp)
                added += 1
            return added

    def _registered(self):
        with self.p.db.session() as s:
            ids = client_repo.ids_with_auth_method(s, SELF_SIGNED_TLS_CLIENT_AUTH)
        for client_id in ids:
            client = self.p.get_client(client_id)
            if client is None:
                continue
            try:
                yield from registered_self_signed(client.registered_jwks())
            except LookupError as exc:  # one unreachable jwks_uri must not hide the others
                log.warning("client %s: %s", client_id, exc)

    def sni_callback(self, sock, server_name, context) -> None:
        # Called for every handshake before the client's certificate is verified.
        try:
            self.refresh()
        except Exception:  # a storage hiccup must not break the handshake
            log.exception("could not reload self-signed client certificates")


def server_context(provider: "Provider") -> ssl.SSLContext:
    """TLS 1.2+ with the server certificate; asks every client for a certificate."""
    s = provider.settings
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(s.tls_cert, s.tls_key or None)
    context.verify_mode = ssl.CERT_OPTIONAL  # RFC 8705 §2: requested, not required
    if s.tls_client_ca:
        context.load_verify_locations(cafile=s.tls_client_ca)
    trust = SelfSignedTrust(provider, context)
    trust.refresh()
    context.sni_callback = trust.sni_callback
    return context
