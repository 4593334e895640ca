"""argon2id for passwords and client secrets (issue 13): parameters stored with each hash; old
scrypt hashes (and argon2id with weaker parameters) verify and are replaced at the next success."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest
from argon2 import PasswordHasher, Type

from server.security import ARGON2, hash_password, verify_password
from server.storage import clients as client_repo, users as user_repo

from .ciba_helpers import CIBA, assert_error


def old_scrypt_hash(password: str) -> str:
    """What the previous release stored (server/security.py before argon2id)."""
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return "scrypt$" + b64(salt) + "$" + b64(dk)


def weak_argon2_hash(password: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1,
                          type=Type.ID).hash(password)


def stored_password(provider, username: str) -> str:
    with provider.db.session() as s:
        return user_repo.by_username(s, username).password_hash


def stored_secret(provider, client_id: str) -> str:
    with provider.db.session() as s:
        return client_repo.get(s, client_id).secret_hash


def set_password(provider, username: str, value: str) -> None:
    with provider.db.session() as s:
        user_repo.by_username(s, username).password_hash = value


def sign_in(http, username: str, password: str):
    page = http.get("/account/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return http.post("/account/login", data={"csrf_token": csrf, "username": username,
                                             "password": password})


def test_new_passwords_and_secrets_are_argon2id_with_their_parameters(provider, alice, kiosk):
    params = f"$argon2id$v=19$m={ARGON2['memory_cost']},t={ARGON2['time_cost']}," \
             f"p={ARGON2['parallelism']}$"
    assert stored_password(provider, "alice").startswith(params)
    assert stored_secret(provider, "kiosk").startswith(params)
    assert verify_password("alice-password", stored_password(provider, "alice")) == (True, None)


@pytest.mark.parametrize("make_old", [old_scrypt_hash, weak_argon2_hash],
                         ids=["scrypt", "weak-argon2id"])
def test_an_old_password_hash_signs_in_and_is_replaced(http, provider, alice, make_old):
    old = make_old("alice-password")
    set_password(provider, "alice", old)
    assert sign_in(http, "alice", "wrong").status_code == 401
    assert stored_password(provider, "alice") == old  # a failure changes nothing
    assert sign_in(http, "alice", "alice-password").status_code == 302
    new = stored_password(provider, "alice")
    assert new.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and new != old
    http.get("/account/logout")
    assert sign_in(http, "alice", "alice-password").status_code == 302  # the new hash works


@pytest.mark.parametrize("make_old", [old_scrypt_hash, weak_argon2_hash],
                         ids=["scrypt", "weak-argon2id"])
def test_an_old_client_secret_hash_authenticates_and_is_replaced(http, provider, kiosk, alice,
                                                                 make_old):
    old = make_old(kiosk.secret)
    with provider.db.session() as s:
        client_repo.get(s, "kiosk").secret_hash = old
    form = {"grant_type": CIBA, "auth_req_id": "unknown"}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"kiosk:nope").decode()}
    assert_error(http.post("/token", data=form, headers=wrong), 401, "invalid_client")
    assert stored_secret(provider, "kiosk") == old
    # the secret is right: the grant fails on the unknown auth_req_id, past authentication
    assert_error(http.post("/token", data=form, headers=kiosk.basic()), 400, "invalid_grant")
    assert stored_secret(provider, "kiosk").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    for _ in range(3):  # polling clients keep authenticating (from the cache)
        assert_error(http.post("/token", data=form, headers=kiosk.basic()), 400, "invalid_grant")


def test_garbage_or_missing_hashes_never_match():
    for stored in (None, "", "garbage", "scrypt$x", "$argon2id$nonsense"):
        assert verify_password("x", stored) == (False, None)
    assert verify_password("x", hash_password("x"))[0]
