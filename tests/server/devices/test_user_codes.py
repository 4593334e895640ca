"""CIBA §7.1 user_code: the current TOTP of one of the user's devices, once, with a lockout."""

from __future__ import annotations

import pyotp
import pytest


@pytest.fixture
def strict_kiosk(make_client):
    return make_client("strict-kiosk", name="Bank desk", user_code_required=True)


@pytest.fixture
def code_of(clock):
    return lambda device, offset=0: pyotp.TOTP(device.totp["secret"]).at(int(clock.now()) + offset)


def _error(r) -> str:
    return r.get_json().get("error", "")


def test_discovery_advertises_user_code_support(http):
    assert http.get("/.well-known/openid-configuration").get_json()[
        "backchannel_user_code_parameter_supported"] is True


def test_missing_user_code(bc_authorize, strict_kiosk, phone):
    r = bc_authorize(strict_kiosk)
    assert (r.status_code, _error(r)) == (400, "missing_user_code")


def test_wrong_user_code(bc_authorize, strict_kiosk, phone, code_of):
    wrong = f"{(int(code_of(phone)) + 1) % 1_000_000:06d}"
    r = bc_authorize(strict_kiosk, user_code=wrong)
    assert (r.status_code, _error(r)) == (400, "invalid_user_code")


@pytest.mark.parametrize("offset", [-30, 0, 30])
def test_current_code_with_a_small_drift_window(bc_authorize, strict_kiosk, phone, code_of, offset):
    assert bc_authorize(strict_kiosk, user_code=code_of(phone, offset)).status_code == 200


@pytest.mark.parametrize("offset", [-90, 90])
def test_codes_outside_the_window_fail(bc_authorize, strict_kiosk, phone, code_of, offset):
    r = bc_authorize(strict_kiosk, user_code=code_of(phone, offset))
    assert _error(r) == "invalid_user_code"


def test_any_active_device_of_the_user(bc_authorize, strict_kiosk, phone, enroll, alice, code_of,
                                       provider):
    tablet = enroll(alice, "tablet")
    assert bc_authorize(strict_kiosk, user_code=code_of(tablet)).status_code == 200
    provider.devices.revoke(tablet.device_id)
    assert _error(bc_authorize(strict_kiosk, user_code=code_of(tablet, 30))) == "invalid_user_code"


def test_another_users_code_fails(bc_authorize, strict_kiosk, phone, enroll, bob, code_of):
    r = bc_authorize(strict_kiosk, user_code=code_of(enroll(bob)))
    assert _error(r) == "invalid_user_code"


def test_a_user_without_device_has_no_valid_code(bc_authorize, strict_kiosk, alice):
    assert _error(bc_authorize(strict_kiosk, user_code="123456")) == "invalid_user_code"


def test_a_code_works_once(bc_authorize, strict_kiosk, phone, code_of):
    code = code_of(phone)
    assert bc_authorize(strict_kiosk, user_code=code).status_code == 200
    r = bc_authorize(strict_kiosk, user_code=code)
    assert (r.status_code, _error(r)) == (400, "invalid_user_code")


def test_lockout_after_failures_refuses_even_the_right_code_the_same_way(
        bc_authorize, strict_kiosk, phone, code_of, provider, clock):
    wrong = f"{(int(code_of(phone)) + 1) % 1_000_000:06d}"
    for _ in range(provider.settings.user_code_max_failures):
        assert _error(bc_authorize(strict_kiosk, user_code=wrong)) == "invalid_user_code"
    locked = bc_authorize(strict_kiosk, user_code=code_of(phone))
    plain_wrong = bc_authorize(strict_kiosk, user_code=wrong)
    assert (locked.status_code, locked.get_json()) == (plain_wrong.status_code, plain_wrong.get_json())
    clock.advance(provider.settings.user_code_lockout + 1)
    assert bc_authorize(strict_kiosk, user_code=code_of(phone)).status_code == 200


def test_failures_of_one_user_do_not_lock_another(bc_authorize, strict_kiosk, phone, enroll, bob,
                                                 code_of, provider):
    bobs = enroll(bob)
    for _ in range(provider.settings.user_code_max_failures + 1):
        bc_authorize(strict_kiosk, user_code="000000")
    assert bc_authorize(strict_kiosk, login_hint="bob", user_code=code_of(bobs)).status_code == 200


def test_success_resets_the_failure_count(bc_authorize, strict_kiosk, phone, code_of, provider,
                                          clock):
    for _ in range(provider.settings.user_code_max_failures - 1):
        bc_authorize(strict_kiosk, user_code="000000" if code_of(phone) != "000000" else "111111")
    assert bc_authorize(strict_kiosk, user_code=code_of(phone)).status_code == 200
    bc_authorize(strict_kiosk, user_code="000000" if code_of(phone, 30) != "000000" else "111111")
    assert bc_authorize(strict_kiosk, user_code=code_of(phone, 30)).status_code == 200
