"""Identifiers made by server.security."""

from __future__ import annotations

from server.security import new_id


def test_ids_never_start_with_a_dash():
    # A device id typed after `ciba-provider devices revoke` must not be read as an option.
    # With plain token_urlsafe about 1 in 64 ids starts with "-", so 4,000 draws would show it.
    assert not any(new_id(32).startswith("-") for _ in range(4000))


def test_ids_keep_their_length_and_alphabet():
    ids = {new_id(24) for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 32 and i.replace("-", "").replace("_", "").isalnum() for i in ids)
