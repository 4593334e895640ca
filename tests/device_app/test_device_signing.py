"""docs/device-protocol.md §3 and §6: the exact header and claims of the two JWS."""

import json
import time

import pytest
from joserfc import jws

from device_app.core.keys import generate_key
from device_app.core.signing import decision_jws, device_auth_jws


def open_jws(token, key):
    obj = jws.deserialize_compact(token, key)
    return obj.protected, json.loads(obj.payload)


def test_device_auth_jws():
    key = generate_key()
    before = int(time.time())
    header, claims = open_jws(device_auth_jws(key, "dev", "https://op", "get", "/device/ws?x=1"), key)
    assert header == {"alg": "ES256", "typ": "device-auth+jwt", "kid": "dev"}
    assert claims["iss"] == "dev" and claims["aud"] == "https://op"
    assert (claims["htm"], claims["htu"]) == ("GET", "/device/ws")
    assert before <= claims["iat"] <= time.time()
    assert claims["iat"] < claims["exp"] <= claims["iat"] + 120
    assert len(claims["jti"]) >= 22  # 128 bits in base64url


def test_each_jws_has_a_fresh_jti():
    key = generate_key()
    jtis = {open_jws(device_auth_jws(key, "d", "a", "GET", "/p"), key)[1]["jti"] for _ in range(20)}
    assert len(jtis) == 20


@pytest.mark.parametrize("decision, message", [("accept", "LIB-4 7F3K"), ("deny", None)])
def test_decision_jws(decision, message):
    key = generate_key()
    header, claims = open_jws(decision_jws(key, "dev", "https://op", "r1", decision, message), key)
    assert header == {"alg": "ES256", "typ": "device-decision+jwt", "kid": "dev"}
    assert {k: claims[k] for k in ("iss", "aud", "request_id", "decision", "binding_message")} == {
        "iss": "dev", "aud": "https://op", "request_id": "r1", "decision": decision,
        "binding_message": message}
    assert claims["iat"] and claims["jti"]


def test_decision_must_be_accept_or_deny():
    with pytest.raises(ValueError):
        decision_jws(generate_key(), "d", "a", "r", "maybe", None)
