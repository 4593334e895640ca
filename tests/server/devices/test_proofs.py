"""The device JWS check (server/devices/proofs.py) on tokens built outside it: ES256 only, the
signature as r || s (RFC 7518 §3.4), no ``crit`` (RFC 7515 §4.1.11), bad encodings refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey

from server.devices import proofs
from server.devices.errors import InvalidToken

CLAIMS = {"iss": "dev", "aud": "https://op", "jti": "j" * 32}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict, claims: dict = CLAIMS) -> str:
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())


@pytest.fixture(scope="module")
def key():
    return ECKey.generate_key("P-256")


@pytest.fixture(scope="module")
def stored(key):
    return json.dumps(proofs.public_jwk(key.as_dict(private=False)))


def test_a_joserfc_token_verifies(key, stored):
    token = jws.serialize_compact({"alg": "ES256", "typ": proofs.AUTH_TYP, "kid": "dev"},
                                  json.dumps(CLAIMS).encode(), key)
    assert proofs.unverified_kid(token) == "dev"
    assert proofs.verify(token, stored, proofs.AUTH_TYP, "dev").claims == CLAIMS


def test_a_changed_payload_fails(key, stored):
    token = jws.serialize_compact({"alg": "ES256", "typ": proofs.AUTH_TYP, "kid": "dev"},
                                  json.dumps(CLAIMS).encode(), key)
    header, _, signature = token.split(".")
    forged = ".".join([header, b64(json.dumps({**CLAIMS, "iss": "x"}).encode()), signature])
    with pytest.raises(InvalidToken, match="signature"):
        proofs.verify(forged, stored, proofs.AUTH_TYP, "dev")


def _es256_der(key: ECKey, signing_input: str) -> bytes:
    return key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))


def _es256_raw(key: ECKey, signing_input: str) -> str:
    """A correct ES256 signature (r || s) over any header, even one joserfc would refuse."""
    r, s = decode_dss_signature(_es256_der(key, signing_input))
    return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_a_hand_made_token_verifies(key, stored):
    token = _es256_raw(key, segments({"alg": "ES256", "typ": proofs.AUTH_TYP, "kid": "dev"}))
    assert proofs.verify(token, stored, proofs.AUTH_TYP, "dev").claims == CLAIMS


@pytest.mark.parametrize("make", [
    pytest.param(lambda key: segments({"alg": "none", "typ": proofs.AUTH_TYP, "kid": "dev"}) + ".",
                 id="alg-none"),
    pytest.param(lambda key: (lambda s: s + "." + b64(hmac.new(b"k", s.encode(), hashlib.sha256)
                                                      .digest()))(
        segments({"alg": "HS256", "typ": proofs.AUTH_TYP, "kid": "dev"})), id="alg-hs256"),
    pytest.param(lambda key: (lambda s: s + "." + b64(_es256_der(key, s)))(
        segments({"alg": "ES256", "typ": proofs.AUTH_TYP, "kid": "dev"})), id="der-signature"),
    pytest.param(lambda key: _es256_raw(key, segments(
        {"alg": "ES256", "typ": proofs.AUTH_TYP, "kid": "dev", "crit": ["exp"], "exp": 1})),
        id="crit"),
    pytest.param(lambda key: "a.b", id="two-parts"),
    pytest.param(lambda key: "a.b.c.d", id="four-parts"),
    pytest.param(lambda key: "e30.e30.%%%", id="not-base64url"),
    pytest.param(lambda key: b64(b"[1]") + ".e30.AAAA", id="header-not-object"),
    pytest.param(lambda key: b64(b"[" * 100 + b"]" * 100) + ".e30.AAAA", id="header-too-deep"),
    pytest.param(lambda key: "x.e30.AAAA", id="bad-length"),
])
def test_refused(key, stored, make):
    with pytest.raises(InvalidToken):
        proofs.verify(make(key), stored, proofs.AUTH_TYP, "dev")


def test_the_wrong_typ_or_kid_is_refused(key, stored):
    for header, problem in (({"typ": "JWT", "kid": "dev"}, "typ"),
                            ({"typ": proofs.AUTH_TYP, "kid": "other"}, "kid")):
        token = jws.serialize_compact({"alg": "ES256", **header}, json.dumps(CLAIMS).encode(),
                                      key)
        with pytest.raises(InvalidToken, match=problem):
            proofs.verify(token, stored, proofs.AUTH_TYP, "dev")


def test_a_payload_that_is_not_an_object_is_refused(key, stored):
    token = jws.serialize_compact({"alg": "ES256", "typ": proofs.AUTH_TYP, "kid": "dev"},
                                  b"[1, 2]", key)
    with pytest.raises(InvalidToken, match="JSON object"):
        proofs.verify(token, stored, proofs.AUTH_TYP, "dev")
