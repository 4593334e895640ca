"""The demo resource API: a library's loans, protected by the provider's access tokens.

A separate Flask app that trusts the provider only through its published JWKS: every call needs
``Authorization: Bearer <access token>``, a JWT access token (RFC 9068) whose signature, ``typ``
(at+jwt), ``iss``, ``aud`` and ``exp`` are checked (RFC 9068 §4). A missing, bad or expired token
gets 401 with an RFC 6750 §3 challenge, and so does a certificate-bound token (RFC 8705 §3,
``cnf.x5t#S256``) used over a connection without that TLS client certificate. Loans are looked up by the token's ``sub``.

    GET /loans   -> {"member": sub, "loans": [{"title", "author", "due"}, ...]}
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import date, timedelta
from typing import Callable

import requests
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..oauth.mtls import confirms, load_certificate

log = logging.getLogger(__name__)

ACCESS_TOKEN_TYP = "at+jwt"
ALGORITHMS = ["RS256", "PS256", "ES256"]

CATALOG = [
    ("The Left Hand of Darkness", "Ursula K. Le Guin"),
    ("Through the Looking-Glass", "Lewis Carroll"),
    ("The Name of the Rose", "Umberto Eco"),
    ("Invisible Cities", "Italo Calvino"),
    ("Middlemarch", "George Eliot"),
    ("The Master and Margarita", "Mikhail Bulgakov"),
    ("A Wizard of Earthsea", "Ursula K. Le Guin"),
    ("Kindred", "Octavia E. Butler"),
    ("The Remains of the Day", "Kazuo Ishiguro"),
    ("Piranesi", "Susanna Clarke"),
]


class TokenRejected(Exception):
    pass


class JwksVerifier:
    """Verifies JWT access tokens with the issuer's JWKS, fetched once and again on a new kid."""

    def __init__(self, issuer: str, audience: str | None = None,
                 now: Callable[[], float] = time.time, min_refresh: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience or self.issuer
        self.now = now
        self.min_refresh = min_refresh
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def keys(self, refresh: bool = False) -> KeySet:
        with self._lock:
            stale = time.monotonic() - self._fetched_at > self.min_refresh
            if self._keys is None or (refresh and stale):
                meta = requests.get(self.issuer + "/.well-known/openid-configuration", timeout=10)
                meta.raise_for_status()
                jwks = requests.get(meta.json()["jwks_uri"], timeout=10)
                jwks.raise_for_status()
                self._keys = KeySet.import_key_set(jwks.json())
                self._fetched_at = time.monotonic()
            return self._keys

    def verify(self, token: str) -> dict:
        try:
            decoded = self._decode(token, refresh=False)
        except TokenRejected:
            decoded = self._decode(token, refresh=True)  # a key published since the last fetch
        if decoded.header.get("typ") != ACCESS_TOKEN_TYP:
            raise TokenRejected("not an access token (typ must be at+jwt)")
        claims = decoded.claims
        if claims.get("iss") != self.issuer:
            raise TokenRejected("issued by another provider")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise TokenRejected("issued for another audience")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= self.now():
            raise TokenRejected("the access token has expired")
        if not isinstance(claims.get("sub"), str):
            raise TokenRejected("the access token has no subject")
        return claims

    def _decode(self, token: str, refresh: bool):
        try:
            return jwt.decode(token, self.keys(refresh), algorithms=ALGORITHMS)
        except requests.RequestException as exc:
            raise TokenRejected(f"cannot fetch the provider's keys ({type(exc).__name__})") from None
        except (JoseError, ValueError, TypeError):
            raise TokenRejected("the signature or format is not valid") from None


def sample_loans(sub: str, today: date | None = None) -> list[dict]:
    """Two or three loans picked from the catalog by the member's sub: stable per member."""
    today = today or date.today()
    seed = hashlib.sha256(sub.encode()).digest()
    count = 2 + seed[0] % 2
    picks: list[int] = []
    for byte in seed[1:]:
        index = byte % len(CATALOG)
        if index not in picks:
            picks.append(index)
        if len(picks) == count:
            break
    return [{"title": CATALOG[i][0], "author": CATALOG[i][1],
             "due": (today + timedelta(days=3 + 7 * n + seed[n + 8] % 5)).isoformat()}
            for n, i in enumerate(picks)]


def create_resource_api(issuer: str, audience: str | None = None,
                        loans: Callable[[str], list[dict]] = sample_loans,
                        verifier: JwksVerifier | None = None) -> Flask:
    app = Flask(__name__)
    checker = verifier or JwksVerifier(issuer, audience)
    app.extensions["jwks_verifier"] = checker

    def challenge(error: str | None, description: str, status: int = 401):
        response = jsonify({"error": error or "invalid_request", "error_description": description})
        response.status_code = status
        params = f' error="{error}", error_description="{description}"' if error else ""
        response.headers["WWW-Authenticate"] = 'Bearer realm="library"' + (
            "," + params if params else "")
        return response

    @app.get("/loans")
    def list_loans():
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return challenge(None, "An access token is required")
        try:
            claims = checker.verify(token.strip())
        except TokenRejected as exc:
            log.info("refused an access token: %s", exc)
            return challenge("invalid_token", str(exc))
        if not confirms(claims, load_certificate(request.environ.get("SSL_CLIENT_CERT"))):
            # RFC 8705 §3: a certificate-bound token only with that certificate.
            return challenge("invalid_token", "the token is bound to a client certificate "
                                              "this connection did not present")
        return jsonify(member=claims["sub"], loans=loans(claims["sub"]))

    @app.get("/")
    def about():
        return jsonify(name="Library loans (CIBA demo resource API)", issuer=checker.issuer,
                       endpoints={"loans": "/loans"})

    @app.after_request
    def no_store(response):
        response.headers["Cache-Control"] = "no-store"
        return response

    return app
