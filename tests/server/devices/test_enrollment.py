"""Enrollment (docs/device-protocol.md §1, §2): one-time codes, the device's key, rate limits."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from server.devices.service import ENROLL_MAX_FAILURES

from ...conftest import ISSUER
from .helpers import DeviceKey


def _code(offer) -> str:
    return parse_qs(urlsplit(offer.uri).query)["code"][0]


def test_enrollment_uri_carries_base_and_a_code_of_at_least_128_bits(provider, alice):
    offer = provider.devices.new_enrollment(alice.id)
    parts = urlsplit(offer.uri)
    query = parse_qs(parts.query)
    assert (parts.scheme, parts.netloc) == ("ciba-enroll", "enroll")
    assert query["base"] == [ISSUER]
    assert len(query["code"][0]) * 6 >= 128
    assert offer.link == f"{ISSUER}/device/enroll?code={query['code'][0]}"
    assert offer.expires_at - provider.clock.now() == provider.settings.enrollment_code_lifetime


def test_enroll_answers_device_id_totp_and_channel(http, provider, alice):
    device = DeviceKey(ISSUER)
    r = http.post("/device/enroll", json=device.enroll_body(_code(provider.devices.new_enrollment(alice.id))))
    assert r.status_code == 201
    body = r.get_json()
    assert len(body["device_id"]) >= 43
    assert body["issuer"] == ISSUER
    assert body["user"] == {"username": "alice", "name": "Alice Liddell"}
    assert body["totp"]["digits"] == 6 and body["totp"]["period"] == 30
    assert body["totp"]["algorithm"] == "SHA1"
    pyotp.TOTP(body["totp"]["secret"]).now()  # a valid base32 secret
    assert body["channel"] == {"type": "websocket", "url": "ws://op.test/device/ws"}
    assert r.headers["Cache-Control"] == "no-store"
    [stored] = provider.devices.devices_of(alice.id)
    assert stored.display_name == "Test phone"
    assert body["totp"]["secret"] not in stored.totp_secret  # sealed at rest


def test_a_code_works_once(http, provider, alice):
    code = _code(provider.devices.new_enrollment(alice.id))
    assert http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body(code)).status_code == 201
    r = http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body(code))
    assert r.status_code == 400
    assert r.get_json()["error"] == "invalid_code"


def test_an_expired_code_fails(http, provider, alice, clock):
    code = _code(provider.devices.new_enrollment(alice.id))
    clock.advance(provider.settings.enrollment_code_lifetime + 1)
    r = http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body(code))
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_code")


def test_a_guessed_code_fails_like_a_used_one(http, provider, alice):
    r = http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body("A" * 32))
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_code")


def test_code_is_bound_to_its_user(http, provider, alice, bob):
    code = _code(provider.devices.new_enrollment(bob.id))
    body = http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body(code)).get_json()
    assert body["user"]["username"] == "bob"
    assert provider.devices.devices_of(alice.id) == []


def test_failed_attempts_are_rate_limited(http, provider, alice, clock):
    for _ in range(ENROLL_MAX_FAILURES):
        r = http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body("guess-" + "x" * 30))
        assert r.status_code == 400
    good = _code(provider.devices.new_enrollment(alice.id))
    r = http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body(good))
    assert r.status_code == 429
    assert r.get_json()["error"] == "too_many_requests"
    assert int(r.headers["Retry-After"]) > 0
    clock.advance(int(r.headers["Retry-After"]) + 1)
    good = _code(provider.devices.new_enrollment(alice.id))
    assert http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body(good)).status_code == 201


def _private_jwk():
    return DeviceKey(ISSUER).key.as_dict(private=True)


@pytest.mark.parametrize("change", [
    pytest.param(lambda b: "not an object", id="not-object"),
    pytest.param(lambda b: {k: v for k, v in b.items() if k != "code"}, id="no-code"),
    pytest.param(lambda b: {**b, "code": 7}, id="code-not-string"),
    pytest.param(lambda b: {**b, "jwk": None}, id="no-jwk"),
    pytest.param(lambda b: {**b, "jwk": {"kty": "RSA", "n": "x", "e": "AQAB"}}, id="rsa-jwk"),
    pytest.param(lambda b: {**b, "jwk": {**b["jwk"], "crv": "P-384"}}, id="p384"),
    pytest.param(lambda b: {**b, "jwk": {**b["jwk"], "x": "AAAA"}}, id="not-on-curve"),
    pytest.param(lambda b: {**b, "jwk": _private_jwk()}, id="private-jwk"),
    pytest.param(lambda b: {**b, "display_name": ["x"]}, id="bad-name"),
    pytest.param(lambda b: {**b, "push": "carrier-pigeon"}, id="unknown-push"),
])
def test_malformed_enrollment_is_invalid_request_and_keeps_the_code(http, provider, alice, change):
    code = _code(provider.devices.new_enrollment(alice.id))
    body = DeviceKey(ISSUER).enroll_body(code)
    r = http.post("/device/enroll", json=change(body))
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_request")
    assert http.post("/device/enroll", json=body).status_code == 201


def test_body_that_is_not_json(http):
    r = http.post("/device/enroll", data="{", content_type="application/json")
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_request")


def test_a_lockout_is_kept_while_it_lasts_and_forgotten_after(http, provider, clock):
    """The housekeeper's purge keeps a live lockout and drops the counter once its window and
    lock are over (counters keyed by address would otherwise pile up for ever)."""
    from server.storage.models import RateCounter

    def counters() -> int:
        with provider.db.session() as s:
            return s.query(RateCounter).count()

    def purge() -> None:
        provider.device_housekeeper._last_purge = float("-inf")
        provider.device_housekeeper.tick()

    for _ in range(ENROLL_MAX_FAILURES):
        http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body("guess-" + "x" * 30))
    r = http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body("guess-" + "y" * 30))
    assert r.status_code == 429
    purge()
    assert counters() == 1
    clock.advance(int(r.headers["Retry-After"]) - 5)
    purge()
    assert counters() == 1
    assert http.post("/device/enroll", json=DeviceKey(ISSUER).enroll_body(
        "guess-" + "z" * 30)).status_code == 429
    clock.advance(3600)
    purge()
    assert counters() == 0
