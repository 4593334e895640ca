"""device_app.core with plain pytest against a real provider process on 127.0.0.1.

The consumption device is a real CIBA client (bc-authorize + polling /token); the device side is
the app's core: enrollment from the provider's own QR image, the WebSocket listener, signed
decisions, reconnection after a provider restart.
"""

from __future__ import annotations

import pytest
import requests

from conftest import wait_for
from device_app.core.api import ProviderClient, ProviderError
from device_app.core.enrollment import enroll, parse_enrollment_uri
from device_app.core.qr import decode_file
from device_app.core.store import AccountStore
from device_app.core.ws_listener import Backoff, WebSocketListener

pytestmark = pytest.mark.slow


@pytest.fixture
def client(provider, data_dir, tmp_path):
    """A device enrolled from the QR image that ``ciba-provider devices enroll --png`` wrote."""
    png = tmp_path / "enroll.png"
    provider.enrollment_png(png)
    store = AccountStore(data_dir)
    account = enroll(store, parse_enrollment_uri(decode_file(png)), "pytest device")
    return ProviderClient(account, store.keys.load(account.device_id))


def test_enrollment_from_the_providers_qr_image(provider, client):
    account = client.account
    assert (account.issuer, account.username, account.name) == (provider.issuer, "alice", "Alice Liddell")
    assert account.totp["secret"] and account.push == "websocket"


def test_an_enrollment_code_is_single_use(provider, data_dir, tmp_path):
    link = parse_enrollment_uri(provider.enrollment_png(tmp_path / "qr.png"))
    enroll(AccountStore(data_dir), link)
    with pytest.raises(ProviderError) as err:
        enroll(AccountStore(tmp_path / "other"), link)
    assert (err.value.status, err.value.error) == (400, "invalid_code")


@pytest.mark.parametrize("accept, expected", [(True, 200), (False, 400)])
def test_decision_reaches_the_client(provider, client, accept, expected):
    message = f"DECIDE {int(accept)}"
    auth_req_id = provider.bc_authorize(message)
    (pending,) = [r for r in client.list_requests() if r["binding_message"] == message]
    assert pending["client_name"] == "Library kiosk"
    assert client.get_request(pending["request_id"])["request_id"] == pending["request_id"]
    result = client.decide(pending["request_id"], accept, message)
    assert result.outcome == ("approved" if accept else "denied")
    status, body = provider.poll_tokens(auth_req_id)
    assert status == expected
    assert ("access_token" in body) if accept else (body["error"] == "access_denied")
    again = client.decide(pending["request_id"], not accept, message)
    assert again.outcome == result.outcome and again.reason


def test_a_changed_binding_message_is_refused(provider, client):
    provider.bc_authorize("ORIGINAL")
    (pending,) = [r for r in client.list_requests() if r["binding_message"] == "ORIGINAL"]
    assert client.decide(pending["request_id"], True, "FORGED").outcome == "failed"


def test_a_device_auth_jws_cannot_be_replayed(provider, client):
    headers = client.auth_header("GET", "/device/requests")
    assert requests.get(provider.issuer + "/device/requests", headers=headers).status_code == 200
    replay = requests.get(provider.issuer + "/device/requests", headers=headers)
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_token")


def test_websocket_push_and_reconnect_after_a_provider_restart(provider, client):
    messages, states = [], []
    listener = WebSocketListener(client, messages.append, lambda s, d="": states.append(s),
                                 backoff=Backoff(initial=0.2, maximum=1.0))
    listener.start()
    try:
        wait_for(lambda: "connected" in states)
        hello = wait_for(lambda: next((m for m in messages if m["type"] == "hello"), None))
        assert hello["device_id"] == client.account.device_id
        provider.bc_authorize("PUSHED")
        wait_for(lambda: any(m.get("request", {}).get("binding_message") == "PUSHED" for m in messages))

        provider.stop()
        wait_for(lambda: states[-1] in ("offline", "connecting"))
        # cleared before the restart: the listener may reconnect and sync before start() returns
        messages.clear()
        provider.start()
        provider.bc_authorize("AFTER RESTART")
        wait_for(lambda: states.count("connected") >= 2, timeout=20)
        # after the reconnect the listener fetched what is pending, kept across the restart
        sync = wait_for(lambda: next((m for m in messages if m["type"] == "sync"), None))
        assert "PUSHED" in {r["binding_message"] for r in sync["requests"]}
        seen = lambda: {r["binding_message"] for m in messages
                        for r in m.get("requests", []) + [m.get("request") or {}] if r}
        wait_for(lambda: "AFTER RESTART" in seen())
    finally:
        listener.stop()
        listener.join(5)


def test_a_request_decided_on_another_device_leaves_this_one(provider, service, client, tmp_path):
    link = provider.enrollment_png(tmp_path / "second.png")
    done = []
    service.enroll_text(link, done.append, pytest.fail, display_name="second device")
    account = wait_for(lambda: done and done[0])
    wait_for(lambda: service.states.get(account.device_id) == "connected")
    provider.bc_authorize("TWO DEVICES")
    item = wait_for(lambda: next((p for p in service.inbox.pending()
                                  if p.binding_message == "TWO DEVICES"), None))
    assert client.decide(item.request_id, True, "TWO DEVICES").outcome == "approved"  # the other device
    wait_for(lambda: service.inbox.get(item.request_id) is None)
    entry = service.inbox.history()[0]
    assert (entry.request_id, entry.outcome, entry.reason) == (item.request_id, "approved",
                                                               "Decided on another device.")


def test_an_approval_the_client_cancels_before_fetching_tokens_shows_as_cancelled(provider, service,
                                                                                 tmp_path):
    link = provider.enrollment_png(tmp_path / "app.png")
    done, notices = [], []
    service.on_notice = lambda kind, text: notices.append((kind, text))
    service.enroll_text(link, done.append, pytest.fail, display_name="this device")
    account = wait_for(lambda: done and done[0])
    wait_for(lambda: service.states.get(account.device_id) == "connected")
    auth_req_id = provider.bc_authorize("APPROVED THEN CANCELLED")
    item = wait_for(lambda: next((p for p in service.inbox.pending()
                                  if p.binding_message == "APPROVED THEN CANCELLED"), None))
    results = []
    service.decide(item.request_id, True, results.append)
    assert wait_for(lambda: results)[0].outcome == "approved"
    assert provider.bc_cancel(auth_req_id).json() == {"status": "cancelled"}
    entry = wait_for(lambda: next((e for e in service.inbox.history()
                                   if e.request_id == item.request_id
                                   and e.outcome == "cancelled"), None))
    assert entry.reason == ("You approved it, but Library kiosk cancelled before signing you in: "
                            "nothing was shared.")
    assert ("cancelled", entry.reason) in notices
    assert provider.token(auth_req_id)[1]["error"] == "access_denied"  # no tokens, ever


def test_the_apps_user_code_is_accepted_as_user_code(provider, client):
    """The code of the app's Code view works as CIBA user_code; a wrong one does not."""
    import time

    from device_app.core.totp import current_code
    from provider_process import CALL_CENTRE

    code = current_code(client.account.totp)
    if code.seconds_left < 3:  # do not race the step boundary
        time.sleep(code.seconds_left + 0.5)
        code = current_code(client.account.totp)
    wrong_code = "000000" if code.code != "000000" else "111111"
    wrong = provider.bc_authorize_response("CALL 1", scope="openid", client_id=CALL_CENTRE,
                                           user_code=wrong_code)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_user_code")
    right = provider.bc_authorize_response("CALL 2", scope="openid", client_id=CALL_CENTRE,
                                           user_code=code.code)
    assert right.status_code == 200, right.text
