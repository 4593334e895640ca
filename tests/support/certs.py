"""Certificates for mutual-TLS tests, made by the same code as ``ciba-provider certs``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from server import certs


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, and client certificates on demand."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server(self) -> tuple[Path, Path]:
        return self.directory / "server.pem", self.directory / "server-key.pem"

    def client(self, name: str, org: str = "Example") -> tuple[Path, Path]:
        """(cert, key) issued by the CA, subject CN=name,O=org."""
        issued = certs.client_certificate(self.directory, name, org)
        return issued.cert, issued.key

    def self_signed(self, name: str) -> tuple[Path, Path, dict]:
        """(cert, key, jwks with x5c) of a self-signed client certificate."""
        issued, jwks = certs.self_signed_client(self.directory, name)
        return issued.cert, issued.key, json.loads(jwks.read_text())

    @staticmethod
    def pem(path: Path) -> str:
        return path.read_text()

    @staticmethod
    def load(path: Path) -> x509.Certificate:
        return x509.load_pem_x509_certificate(path.read_bytes())


def make_pki(directory: Path) -> Pki:
    certs.ensure_ca(directory)
    certs.server_certificate(directory, ["127.0.0.1", "localhost"])
    return Pki(directory)
