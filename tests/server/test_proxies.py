"""Behind a reverse proxy (CIBA_TRUSTED_PROXIES), rate limits key on the real client address."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey

from server import create_app


def _failed_enrollments(http, address: str, count: int) -> list[int]:
    jwk = ECKey.generate_key("P-256").as_dict(private=False)
    body = {"code": "not-a-real-code", "jwk": jwk}
    return [http.post("/device/enroll", json=body, headers={"X-Forwarded-For": address}).status_code
            for _ in range(count)]


@pytest.fixture
def proxied(settings, clock):
    settings.trusted_proxies = 1
    return create_app(settings, clock=clock).test_client()


def test_each_client_behind_the_proxy_has_its_own_enrollment_limit(proxied):
    statuses = _failed_enrollments(proxied, "203.0.113.7", 12)
    assert statuses[-1] == 429
    assert _failed_enrollments(proxied, "198.51.100.9", 1) == [400]


def test_without_trusted_proxies_the_forwarded_header_is_ignored(http):
    statuses = _failed_enrollments(http, "203.0.113.7", 12)
    assert statuses[-1] == 429
    # a forged X-Forwarded-For does not escape the limit
    assert _failed_enrollments(http, "198.51.100.9", 1) == [429]
