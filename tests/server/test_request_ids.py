"""A request's ids (server/oauth/request_ids.py): time-stamped so that the storage's unique
indexes grow in order, each secret with 256 random bits and stored only as a key, and the ids
of requests made before stamps (pending when a provider is upgraded) still found, approved and
exchanged."""

from __future__ import annotations

import base64
import hashlib
import re

from server.oauth import request_ids
from server.security import digest, new_id
from server.storage import ciba_requests

from .ciba_helpers import assert_error, auth_req_id, poll
from .test_approval_page import csrf, sign_in, text

ISSUER = "http://op.test"


def _bits(urlsafe: str) -> int:
    return len(base64.urlsafe_b64decode(urlsafe + "=" * (-len(urlsafe) % 4))) * 8


def test_new_ids_share_a_stamp_and_keep_their_entropy():
    auth_req_id_ = request_ids.new_auth_req_id()
    ids = request_ids.companions(auth_req_id_)
    stamp = auth_req_id_[:16]
    assert re.fullmatch(r"[0-9a-f]{16}", stamp)
    for secret in (auth_req_id_, ids.approval_token):
        # CIBA §7.3: characters A-Z a-z 0-9 . - _ only; >= 160 bits (here 256) of entropy.
        assert re.fullmatch(r"[0-9a-f]{16}\.[A-Za-z0-9_-]{43}", secret)
        assert secret.startswith(stamp + ".") and _bits(secret[17:]) == 256
    assert ids.device_request_id.startswith(stamp) and _bits(ids.device_request_id[16:]) == 192
    assert ids.row_id.startswith(stamp) and len(ids.row_id) == 32
    # Every stored value fits the columns (String(64), enforced by PostgreSQL).
    assert max(len(request_ids.key(auth_req_id_)), len(ids.device_request_id),
               len(ids.row_id)) <= 64


def test_a_key_is_the_stamp_and_a_hash_never_the_secret():
    secret = request_ids.new_auth_req_id()
    key = request_ids.key(secret)
    assert key == secret[:16] + hashlib.sha256(secret.encode()).hexdigest()[:48]
    assert secret[17:] not in key and len(key) == 64
    assert request_ids.key(secret[:-1] + ("A" if secret[-1] != "A" else "B")) != key


def test_an_id_made_before_stamps_keeps_its_digest_as_key():
    legacy = new_id(32)  # what releases before round 6 issued
    assert "." not in legacy and request_ids.key(legacy) == digest(legacy)


def test_an_id_without_a_stamp_gets_companions_with_a_fresh_one():
    ids = request_ids.companions(new_id(32))  # a deployment's own generate_auth_req_id
    assert re.fullmatch(r"[0-9a-f]{16}", ids.row_id[:16])
    assert ids.device_request_id[:16] == ids.row_id[:16] == ids.approval_token[:16]


def test_stored_keys_grow_in_the_order_requests_are_made(http, alice, kiosk, provider):
    made = [auth_req_id(http, kiosk) for _ in range(5)]
    rows = [ciba_requests.find_by_hash(provider.db, request_ids.key(r)) for r in made]
    for column in ("id", "auth_req_id_hash", "device_request_id", "approval_token_hash"):
        values = [getattr(row, column) for row in rows]
        assert [v[:16] for v in values] == sorted(v[:16] for v in values), column
        assert len(set(values)) == 5
    assert [r[:16] for r in made] == [row.id[:16] for row in rows]


def _legacy_request(provider, alice, kiosk) -> tuple[str, str, str]:
    """A pending request stored exactly as releases before round 6 stored it: (auth_req_id,
    device_request_id, approval token)."""
    now = provider.clock.now()
    secret, device_request_id, approval_token = new_id(32), new_id(24), new_id(32)
    ciba_requests.insert(
        provider.db, id=ciba_requests.new_row_id(), auth_req_id_hash=digest(secret),
        device_request_id=device_request_id, client_id=kiosk.client_id, user_id=alice.id,
        scope="openid", binding_message="OLD-1", delivery_mode="poll", created_at=now,
        expires_at=now + 300, interval=5, approval_token_hash=digest(approval_token),
        status="pending")
    return secret, device_request_id, approval_token


def test_a_request_pending_from_before_stamps_is_approved_and_exchanged(http, alice, kiosk,
                                                                        provider):
    secret, device_request_id, approval_token = _legacy_request(provider, alice, kiosk)
    assert_error(poll(http, kiosk, secret), 400, "authorization_pending")
    assert ciba_requests.find_by_device_request_id(provider.db, device_request_id) is not None
    path = f"/approve/{approval_token}"
    page = sign_in(http, path)
    assert 'id="binding-message">OLD-1<' in text(page)
    done = http.post(path, data={"action": "accept", "csrf_token": csrf(page)})
    assert "Request approved" in text(done)
    tokens = poll(http, kiosk, secret)
    assert tokens.status_code == 200, tokens.json
    assert_error(poll(http, kiosk, secret), 400, "invalid_grant")  # single use (CIBA §11)


def test_a_request_pending_from_before_stamps_can_be_cancelled(http, alice, kiosk, provider):
    secret, _, _ = _legacy_request(provider, alice, kiosk)
    response = http.post("/bc-cancel", data={"auth_req_id": secret},
                         headers=kiosk.basic())
    assert response.status_code == 200 and response.json == {"status": "cancelled"}
    assert_error(poll(http, kiosk, secret), 400, "access_denied")


def test_a_new_request_and_an_unknown_stamped_id(http, alice, kiosk):
    req = auth_req_id(http, kiosk)
    assert_error(poll(http, kiosk, req), 400, "authorization_pending")
    forged = req[:17] + ("A" if req[17] != "A" else "B") + req[18:]  # same stamp, other secret
    assert_error(poll(http, kiosk, forged), 400, "invalid_grant")
