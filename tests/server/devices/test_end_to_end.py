"""The whole device flow against a real ``ciba-provider serve`` process: the QR code from the
account page decoded with zxing-cpp, enrollment, a real WebSocket, bc-authorize by a client,
signed Accept/Deny, tokens polled by the client; and the refusals that need a real socket."""

from __future__ import annotations

import time

import pytest
import requests
import websocket

from tests.support.provider_process import ProviderProcess

from .realworld import DESK, Phone, bc_authorize, poll_tokens, qr_from_enroll_page, seed, signed_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    with ProviderProcess(tmp_path_factory.mktemp("e2e")) as process:
        seed(process)
        yield process


@pytest.fixture(scope="module")
def alice_session(op):
    return signed_in(op, "alice", "alice-password")


@pytest.fixture
def phone(op, alice_session):
    device = Phone(op.issuer).enroll(qr_from_enroll_page(alice_session, op), "Alice's phone")
    yield device
    device.close()


@pytest.mark.parametrize("accept", [True, False], ids=["accept", "deny"])
def test_full_flow(op, phone, accept):
    hello = phone.connect()
    assert hello == {"type": "hello", "device_id": phone.device_id, "pending": 0}
    r = bc_authorize(op.url(), binding_message="LIB-4 7F3K")
    assert r.status_code == 200, r.text
    event = phone.receive_type("login_request")
    request = event["request"]
    assert request["client_name"] == "Library kiosk"
    assert request["binding_message"] == "LIB-4 7F3K"
    assert [s["scope"] for s in request["scopes"]] == ["openid", "email"]
    assert r.json()["auth_req_id"] not in str(event)
    decided = phone.decide(request, accept)
    assert decided.json() == {"request_id": request["request_id"],
                              "status": "approved" if accept else "denied"}
    tokens = poll_tokens(op.url(), r.json()["auth_req_id"])
    if accept:
        assert {"access_token", "id_token", "token_type"} <= set(tokens)
    else:
        assert tokens["error"] == "access_denied"


def test_offline_device_gets_pending_on_reconnect_and_others_hear_the_decision(op, phone,
                                                                               alice_session):
    tablet = Phone(op.issuer).enroll(qr_from_enroll_page(alice_session, op), "Alice's tablet")
    phone.connect()
    r = bc_authorize(op.url(), binding_message="OFFLINE 1")
    phone.receive_type("login_request")
    hello = tablet.connect()  # the tablet was offline when the request was made
    assert hello["pending"] >= 1
    waiting = tablet.receive_type("login_request")["request"]
    while waiting["binding_message"] != "OFFLINE 1":
        waiting = tablet.receive_type("login_request")["request"]
    assert tablet.decide(waiting, accept=True).status_code == 200
    resolved = phone.receive_type("request_resolved")
    assert resolved == {"type": "request_resolved", "request_id": waiting["request_id"],
                        "status": "approved"}
    assert "access_token" in poll_tokens(op.url(), r.json()["auth_req_id"])
    tablet.close()


def test_expired_requests_are_withdrawn_from_connected_devices(op, phone):
    phone.connect()
    bc_authorize(op.url(), binding_message="SHORT", requested_expiry="2")
    request = phone.receive_type("login_request")["request"]
    resolved = phone.receive_type("request_resolved", timeout=15)
    assert resolved["request_id"] == request["request_id"] and resolved["status"] == "expired"
    assert phone.decide(request, accept=True).status_code == 410


def test_query_parameter_authentication(op, phone):
    assert phone.connect(query=True)["type"] == "hello"
    assert phone.ws.send('{"type": "ping"}') and phone.receive() == {"type": "pong"}


@pytest.mark.parametrize("bad", [
    pytest.param({"iat": int(time.time()) - 3600, "exp": int(time.time()) - 3540}, id="expired"),
    pytest.param({"htu": "/device/requests"}, id="wrong-path"),
    pytest.param({"aud": "http://elsewhere.test"}, id="wrong-aud"),
])
def test_websocket_upgrade_with_a_bad_token_is_401(op, phone, bad):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        phone.connect(**bad)
    assert refused.value.status_code == 401


def test_websocket_without_or_with_foreign_token(op, phone):
    url = op.url("/device/ws").replace("http", "ws", 1)
    impostor = Phone(op.issuer, device_id=phone.device_id)  # same device_id, another key
    for header in ([], [f"Authorization: Device {impostor.auth('GET', '/device/ws')}"]):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url, header=header, timeout=10)
        assert refused.value.status_code == 401


def test_revoke_on_the_account_page_drops_the_socket_at_once(op, phone, alice_session):
    import re

    phone.connect()
    page = alice_session.get(op.url("/account/devices/"), timeout=10).text
    assert phone.device_id in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = alice_session.post(op.url(f"/account/devices/{phone.device_id}/revoke"),
                           data={"csrf_token": csrf}, timeout=10)
    assert r.status_code == 200 and "revoked" in r.text
    assert phone.receive(timeout=5) == {"type": "device_revoked"}
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        phone.receive(timeout=5)
    with pytest.raises(websocket.WebSocketBadStatusException):
        phone.connect()
    path = "/device/requests"
    assert requests.get(op.url(path), headers=phone.headers("GET", path)).status_code == 401


def test_revoke_with_the_cli_drops_the_socket(op, phone):
    phone.connect()
    listed = op.cli("devices", "list", "alice")
    assert phone.device_id in listed
    op.cli("devices", "revoke", phone.device_id)
    assert phone.receive(timeout=10) == {"type": "device_revoked"}


def test_user_code_from_the_device(op, phone):
    ok = bc_authorize(op.url(), creds=DESK, user_code=phone.user_code())
    assert ok.status_code == 200, ok.text
    again = bc_authorize(op.url(), creds=DESK, user_code=phone.user_code())
    assert again.json()["error"] == "invalid_user_code"
    assert bc_authorize(op.url(), creds=DESK).json()["error"] == "missing_user_code"


def test_cli_enroll_png_decodes_to_a_working_code(op, tmp_path):
    import zxingcpp
    from PIL import Image

    png = tmp_path / "enroll.png"
    out = op.cli("devices", "enroll", "bob", "--png", str(png))
    [barcode] = zxingcpp.read_barcodes(Image.open(png), formats=zxingcpp.BarcodeFormat.QRCode)
    assert barcode.text in out and ("█" in out or "▀" in out)
    device = Phone(op.issuer).enroll(barcode.text, "Bob's phone")
    assert device.enrollment["user"]["username"] == "bob"
    reused = requests.post(op.url("/device/enroll"), timeout=10,
                           json=Phone(op.issuer).enroll_body(barcode.text.split("code=")[1]))
    assert reused.json()["error"] == "invalid_code"
