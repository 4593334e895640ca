"""Keys are made on the device and kept owner-only; accounts persist in a JSON store."""

import stat

from device_app.core.keys import generate_key, public_jwk
from device_app.core.store import Account, AccountStore


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_public_jwk_has_no_private_part():
    jwk = public_jwk(generate_key())
    assert set(jwk) == {"kty", "crv", "x", "y"}
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")


def test_private_key_file_is_owner_only(data_dir):
    store = AccountStore(data_dir)
    key = generate_key()
    path = store.keys.save("dev1", key)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert store.keys.load("dev1").as_dict(private=False) == key.as_dict(private=False)


def test_store_keeps_several_accounts_and_forgets_one(data_dir):
    store = AccountStore(data_dir)
    for device_id, user in (("d1", "alice"), ("d2", "bob")):
        store.keys.save(device_id, generate_key())
        store.add(Account(device_id=device_id, base_url="https://op", issuer="https://op", username=user,
                          totp={"secret": "GC4KDBMYUY5BIFPRE3FIMDYGBRIQEBOR"}))
    assert mode(store.path) == 0o600
    assert [a.username for a in AccountStore(data_dir).accounts()] == ["alice", "bob"]
    store.remove("d1")
    assert [a.username for a in store.accounts()] == ["bob"]
    assert not (store.keys.dir / "d1.pem").exists()


def test_account_labels():
    account = Account(device_id="d", base_url="http://127.0.0.1:5000", issuer="http://127.0.0.1:5000",
                      username="alice", name="Alice Liddell")
    assert account.label == "Alice Liddell @ 127.0.0.1:5000"
    assert account.push == "websocket"


def test_an_unreadable_store_is_kept_aside_and_the_app_starts_empty(data_dir):
    data_dir.mkdir()
    (data_dir / "accounts.json").write_text("{not json")
    store = AccountStore(data_dir)
    assert store.accounts() == []
    assert [p.name.split("-")[0] for p in data_dir.glob("accounts.json.unreadable-*")] == ["accounts.json.unreadable"]
