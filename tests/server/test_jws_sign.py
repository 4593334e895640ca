"""Our own tokens' compact JWS (server/oauth/jws_sign.py): the same header and payload bytes as
joserfc's jwt.encode made before, signatures that joserfc (an independent implementation)
verifies for every algorithm we sign with, and no signing with the wrong key family."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from server.oauth import jws_sign

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
CLAIMS = {"iss": "https://op.example", "sub": "u-1", "aud": "kiosk", "iat": 1700000000,
          "exp": 1700000300, "scope": "openid profile", "name": "Zoë", "cnf": {"x5t#S256": "x"}}


@pytest.mark.parametrize("alg,key,typ", [("RS256", RSA, "JWT"), ("PS256", RSA, "JWT"),
                                         ("ES256", EC, "at+jwt"), ("RS256", RSA, "at+jwt")])
def test_same_bytes_as_joserfc_and_verified_by_it(alg, key, typ):
    token = jws_sign.sign(key, alg, typ, dict(CLAIMS))
    before = jwt.encode({"alg": alg, "typ": typ, "kid": key.kid}, dict(CLAIMS), key,
                        algorithms=[alg])
    assert token.split(".")[:2] == before.split(".")[:2]
    decoded = jwt.decode(token, KeySet([RSA, EC]), algorithms=[alg])
    assert decoded.header == {"typ": typ, "alg": alg, "kid": key.kid}
    assert decoded.claims == CLAIMS


def test_a_changed_payload_does_not_verify():
    header, _, signature = jws_sign.sign(EC, "ES256", "JWT", dict(CLAIMS)).split(".")
    other = jws_sign.sign(EC, "ES256", "JWT", {**CLAIMS, "sub": "u-2"}).split(".")[1]
    with pytest.raises(Exception):
        jwt.decode(f"{header}.{other}.{signature}", KeySet([EC]), algorithms=["ES256"])


@pytest.mark.parametrize("alg,key", [("ES256", RSA), ("RS256", EC), ("PS256", EC),
                                     ("HS256", RSA), ("none", EC)])
def test_refuses_a_key_of_another_family_or_another_algorithm(alg, key):
    with pytest.raises(ValueError):
        jws_sign.sign(key, alg, "JWT", dict(CLAIMS))
