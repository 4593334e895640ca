"""last_seen_at (shown on the account and CLI device lists) is written in batches: a device call
records it, and it reaches the database at the latest when the batch is flushed (the
housekeeper does so every tick), so a reconnect storm does not write once per device."""

from __future__ import annotations

from server.storage import devices as device_repo


def last_seen(provider, device_id: str):
    with provider.db.session() as s:
        return device_repo.get(s, device_id).last_seen_at


def test_a_device_call_is_recorded_and_flushed(provider, http, phone, clock):
    response = http.get("/device/requests", headers=phone.headers("GET", "/device/requests",
                                                                  now=clock.now()))
    assert response.status_code == 200
    provider.devices.flush_last_seen()
    assert last_seen(provider, phone.device_id) == clock.now()


def test_a_held_batch_is_written_by_a_later_call(provider, http, phone, clock):
    first = clock.now()
    http.get("/device/requests", headers=phone.headers("GET", "/device/requests", now=first))
    clock.advance(61)  # held for longer than HOLD, and a minute later: due again
    http.get("/device/requests", headers=phone.headers("GET", "/device/requests",
                                                       now=clock.now()))
    assert last_seen(provider, phone.device_id) in (first, clock.now())
    provider.devices.flush_last_seen()
    assert last_seen(provider, phone.device_id) == clock.now()


def test_the_housekeeper_flushes(provider, http, phone, clock):
    http.get("/device/requests", headers=phone.headers("GET", "/device/requests",
                                                       now=clock.now()))
    provider.housekeeper.tick()
    assert last_seen(provider, phone.device_id) == clock.now()
