"""The app lock (device_app/core/lock.py): keys encrypted under a PIN-derived key, a slowdown
for wrong PINs that survives a restart, change and removal of the PIN."""

from __future__ import annotations

import pytest

from device_app.core.keys import generate_key
from device_app.core.lock import FREE_TRIES, AppLock, Locked, PinError
from device_app.core.store import AccountStore

FAST = {"n": 2 ** 10, "r": 8, "p": 1}  # tests only; the app uses N = 2^15


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def store_with_key(data_dir, clock):
    lock = AppLock(data_dir, clock, FAST)
    store = AccountStore(data_dir, lock)
    key = generate_key()
    store.keys.save("device-1", key)
    return lock, store, key


def test_setting_a_pin_encrypts_the_keys_and_only_the_pin_opens_them(data_dir, clock):
    lock, store, key = store_with_key(data_dir, clock)
    assert not lock.enabled and lock.unlocked
    lock.set_pin("482913", store.keys.plain_files())
    assert lock.enabled
    sealed = data_dir / "keys" / "device-1.pem.enc"
    assert not (data_dir / "keys" / "device-1.pem").exists()
    assert b"PRIVATE KEY" not in sealed.read_bytes()
    assert sealed.stat().st_mode & 0o777 == 0o600

    after_restart = AppLock(data_dir, clock, FAST)
    restarted = AccountStore(data_dir, after_restart)
    assert not after_restart.unlocked
    with pytest.raises(Locked):
        restarted.keys.load("device-1")
    after_restart.unlock("482913")
    assert restarted.keys.load("device-1").as_dict(private=True)["d"] == key.as_dict(private=True)["d"]
    restarted.keys.save("device-2", generate_key())  # a new account's key is encrypted too
    assert (data_dir / "keys" / "device-2.pem.enc").exists()


def test_wrong_pins_slow_down_and_the_wait_survives_a_restart(data_dir, clock):
    lock, store, _ = store_with_key(data_dir, clock)
    lock.set_pin("482913", store.keys.plain_files())
    for _ in range(FREE_TRIES - 1):
        with pytest.raises(PinError) as wrong:
            lock.unlock("000000")
        assert wrong.value.wait == 0
    with pytest.raises(PinError) as third:
        lock.unlock("000000")
    assert third.value.wait == 30
    restarted = AppLock(data_dir, clock, FAST)
    with pytest.raises(PinError, match="Try again in"):
        restarted.unlock("482913")  # even the right PIN waits
    clock.now += 31
    with pytest.raises(PinError) as fourth:
        restarted.unlock("111111")
    assert fourth.value.wait == 60  # doubles
    clock.now += 61
    restarted.unlock("482913")
    assert restarted.wait_seconds() == 0 and restarted.unlocked


def test_change_and_remove_the_pin(data_dir, clock):
    lock, store, key = store_with_key(data_dir, clock)
    lock.set_pin("482913", store.keys.plain_files())
    with pytest.raises(PinError):
        lock.set_pin("555555", [], current_pin="000000")
    lock.set_pin("555555", [], current_pin="482913")
    again = AppLock(data_dir, clock, FAST)
    with pytest.raises(PinError):
        again.unlock("482913")
    again.remove_pin("555555", AccountStore(data_dir, again).keys.encrypted_files())
    assert not again.enabled
    plain = data_dir / "keys" / "device-1.pem"
    assert plain.stat().st_mode & 0o777 == 0o600
    assert AccountStore(data_dir).keys.load("device-1").as_dict(private=True)["d"] == \
        key.as_dict(private=True)["d"]


@pytest.mark.parametrize("pin", ["123", "12345678901234", "12ab56", ""])
def test_a_pin_is_4_to_12_digits(data_dir, clock, pin):
    lock = AppLock(data_dir, clock, FAST)
    with pytest.raises(PinError, match="4 to 12 digits"):
        lock.set_pin(pin, [])


def test_an_accept_needs_the_pin_again_after_five_minutes(data_dir, clock):
    lock, store, _ = store_with_key(data_dir, clock)
    lock.set_pin("482913", store.keys.plain_files())
    assert lock.recently_entered()
    clock.now += 301
    assert not lock.recently_entered()
