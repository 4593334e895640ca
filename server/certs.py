"""Test certificates for mutual TLS (RFC 8705), as ``ciba-provider certs`` writes them: a CA,
a server certificate for a host name, client certificates the CA issues (tls_client_auth) and
self-signed client certificates with the JWKS to register them (self_signed_tls_client_auth).

For trying the mTLS setup and for tests; production certificates come from your own PKI. Keys
are P-256 (fast to make; every TLS stack here speaks ECDSA). Existing files are reused, so a
second run adds a client without replacing the CA that already signed the others.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from joserfc.jwk import ECKey

VALID_DAYS = 365


@dataclass
class Issued:
    cert: Path
    key: Path
    subject_dn: str


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def ensure_ca(directory: Path, org: str = "Example") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """``ca.pem`` and ``ca-key.pem`` in ``directory``: loaded when present, else made."""
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cert, key  # type: ignore[return-value]
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{org} test CA", org)
    cert = (_builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _leaf(directory: Path, stem: str, subject: x509.Name, ca, ca_key, *, server: bool,
          sans: list[x509.GeneralName]) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (_builder(subject, ca.subject if ca is not None else subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
    cert = builder.sign(ca_key if ca is not None else key, hashes.SHA256())
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path, subject.rfc4514_string())


def server_certificate(directory: Path, hosts: list[str], org: str = "Example") -> Issued:
    """``server.pem``/``server-key.pem`` for ``hosts`` (DNS names or IP addresses)."""
    ca, ca_key = ensure_ca(directory, org)
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return _leaf(directory, "server", _name(hosts[0], org), ca, ca_key, server=True, sans=sans)


def client_certificate(directory: Path, name: str, org: str = "Example") -> Issued:
    """``NAME.pem``/``NAME-key.pem`` issued by the CA, subject ``CN=NAME,O=ORG``."""
    ca, ca_key = ensure_ca(directory, org)
    return _leaf(directory, name, _name(name, org), ca, ca_key, server=False, sans=[])


def self_signed_client(directory: Path, name: str, org: str = "Example") -> tuple[Issued, Path]:
    """A self-signed ``NAME.pem``/``NAME-key.pem`` and ``NAME-jwks.json``: its public key with
    the certificate in ``x5c`` (RFC 7517 §4.7), to register with ``--jwks``."""
    directory.mkdir(parents=True, exist_ok=True)
    issued = _leaf(directory, name, _name(name, org), None, None, server=False, sans=[])
    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    jwk = ECKey.import_key(issued.key.read_bytes()).as_dict(private=False)
    jwk.update(kid=name, use="sig",
               x5c=[base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()])
    jwks_path = directory / f"{name}-jwks.json"
    jwks_path.write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")
    return issued, jwks_path
