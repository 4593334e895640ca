"""Mutual-TLS client authentication and certificate-bound access tokens (RFC 8705).

- ``tls_client_auth`` (§2.1): a certificate issued by a CA the provider trusts
  (``CIBA_TLS_CLIENT_CA``) whose subject DN or one SAN equals the one registered for the client.
- ``self_signed_tls_client_auth`` (§2.2): the certificate itself is one of the ``x5c`` entries of
  the client's registered JWKS; no PKI is involved.
- Bound tokens (§3): the token carries ``cnf.x5t#S256``, the SHA-256 thumbprint of the DER
  certificate, and a protected resource accepts the token only over a connection with that
  certificate.

The web layer puts the parsed peer certificate (or None) on the request
(``request.client_certificate``); nothing here knows where it came from (TLS or a proxy).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from . import errors

if TYPE_CHECKING:
    from .context import OAuthProvider
    from .clients import RegisteredClient

log = logging.getLogger(__name__)

TLS_CLIENT_AUTH = "tls_client_auth"
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
MTLS_METHODS = (TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH)

#: Where the web layer leaves the request's parsed client certificate (or None) in the environ.
ENVIRON_KEY = "ciba.client_certificate"

#: RFC 8705 §2.1.2 client metadata: exactly one of these says which certificate is the client's.
SUBJECT_FIELDS = ("tls_client_auth_subject_dn", "tls_client_auth_san_dns",
                  "tls_client_auth_san_uri", "tls_client_auth_san_ip",
                  "tls_client_auth_san_email")


def client_certificate(environ) -> x509.Certificate | None:
    """The request's TLS client certificate, as the web layer found it."""
    return environ.get(ENVIRON_KEY)


# -- certificates ----------------------------------------------------------------------------
def load_certificate(data: str | bytes | None) -> x509.Certificate | None:
    """A PEM certificate, also URL-encoded as nginx's ``$ssl_client_escaped_cert`` sends it;
    None for anything else (an absent or unparsable certificate is no certificate)."""
    if not data:
        return None
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    if "%" in text:
        text = unquote(text)
    try:
        return x509.load_pem_x509_certificate(text.strip().encode("ascii", "replace"))
    except ValueError:
        return None


def thumbprint(cert: x509.Certificate) -> str:
    """x5t#S256 (RFC 8705 §3.1): base64url SHA-256 of the DER encoding, without padding."""
    der = cert.public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


class CertificateFileError(ValueError):
    """A configured certificate file is missing or unreadable (an operator can fix it)."""


def load_ca_bundle(path: str) -> list[x509.Certificate]:
    if not path:
        return []
    try:
        with open(path, "rb") as fh:
            return x509.load_pem_x509_certificates(fh.read())
    except (OSError, ValueError) as exc:
        raise CertificateFileError(f"cannot read CA certificates from {path}: {exc}") from None


def _valid_now(cert: x509.Certificate, now: float) -> bool:
    moment = datetime.fromtimestamp(now, timezone.utc)
    return cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc


def issued_by_trusted_ca(cert: x509.Certificate, cas: list[x509.Certificate], now: float) -> bool:
    """The certificate is in its validity period and signed directly by one of ``cas`` (the
    bundle may hold intermediates); the TLS layer has already checked possession of the key."""
    if not _valid_now(cert, now):
        return False
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if _valid_now(ca, now):
            return True
    return False


def parse_subject_dn(text: str) -> x509.Name:
    """An RFC 4514 string such as ``CN=console,O=Example``; ValueError when malformed."""
    name = x509.Name.from_rfc4514_string(text)
    if not list(name):
        raise ValueError("empty subject DN")
    return name


def _sans(cert: x509.Certificate, kind) -> list:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(ext.value.get_values_for_type(kind))


def matches_registration(cert: x509.Certificate, row) -> bool:
    """RFC 8705 §2.1.2: the registered subject DN, or the registered SAN of the given type."""
    if row.tls_client_auth_subject_dn:
        try:
            return cert.subject == parse_subject_dn(row.tls_client_auth_subject_dn)
        except ValueError:
            return False
    if row.tls_client_auth_san_dns:
        return row.tls_client_auth_san_dns.lower() in (
            v.lower() for v in _sans(cert, x509.DNSName))
    if row.tls_client_auth_san_uri:
        return row.tls_client_auth_san_uri in _sans(cert, x509.UniformResourceIdentifier)
    if row.tls_client_auth_san_ip:
        try:
            wanted = ipaddress.ip_address(row.tls_client_auth_san_ip)
        except ValueError:
            return False
        return wanted in _sans(cert, x509.IPAddress)
    if row.tls_client_auth_san_email:
        return row.tls_client_auth_san_email.lower() in (
            v.lower() for v in _sans(cert, x509.RFC822Name))
    return False


def registered_self_signed(jwks: dict) -> list[x509.Certificate]:
    """The first certificate of each ``x5c`` chain in a JWKS (RFC 7517 §4.7; RFC 8705 §2.2)."""
    found = []
    for key in jwks.get("keys", []):
        chain = key.get("x5c") if isinstance(key, dict) else None
        if isinstance(chain, list) and chain and isinstance(chain[0], str):
            try:
                found.append(x509.load_der_x509_certificate(base64.b64decode(chain[0])))
            except ValueError:
                continue
    return found


# -- Authlib client authentication methods ---------------------------------------------------
class MutualTlsClientAuth:
    """One RFC 8705 §2 method for Authlib's ``register_client_auth_method``."""

    def __init__(self, provider: "OAuthProvider", method: str) -> None:
        self.provider, self.method = provider, method

    def __call__(self, query_client, request) -> "RegisteredClient | None":
        # RFC 8705 §2: the client_id parameter identifies the client; the certificate proves it.
        client_id = request.payload.data.get("client_id")
        cert = getattr(request, "client_certificate", None)
        if not client_id or request.headers.get("Authorization") \
                or request.payload.data.get("client_assertion"):
            return None
        client = query_client(client_id)
        if client is None or client.row.auth_method != self.method:
            return None
        if cert is None:
            log.info("client %s sent no TLS client certificate", client_id)
            return None
        if self.method == TLS_CLIENT_AUTH:
            ok = issued_by_trusted_ca(cert, self.provider.client_ca, self.provider.clock.now()) \
                and matches_registration(cert, client.row)
        else:
            try:
                registered = registered_self_signed(client.registered_jwks())
            except LookupError as exc:  # a jwks_uri that cannot be fetched
                log.info("client %s: %s", client_id, exc)
                return None
            ok = any(cert == c for c in registered)
        if not ok:
            log.info("client %s: the TLS client certificate does not match its registration",
                     client_id)
            return None
        return client


# -- bound tokens ----------------------------------------------------------------------------
def binding_for(client: "RegisteredClient", request) -> str | None:
    """The thumbprint to bind a new access token to (RFC 8705 §3): the certificate of this
    token request when the client is registered for bound tokens, which then needs one."""
    if not client.row.tls_client_certificate_bound_access_tokens:
        return None
    cert = getattr(request, "client_certificate", None)
    if cert is None:
        raise errors.InvalidRequestError(
            "This client receives certificate-bound access tokens: connect with its TLS "
            "client certificate")
    return thumbprint(cert)


def confirms(claims: dict, cert: x509.Certificate | None) -> bool:
    """A protected resource's check (RFC 8705 §3): an unbound token passes; a bound one only
    with the same certificate on this connection."""
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or "x5t#S256" not in cnf:
        return True
    if cert is None:
        return False
    return hmac.compare_digest(str(cnf["x5t#S256"]), thumbprint(cert))
