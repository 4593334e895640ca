"""Helpers for the end-to-end device tests: a browser-less account session, a phone that speaks
docs/device-protocol.md over real HTTP and a real WebSocket (websocket-client), and a client."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import requests
import websocket
import zxingcpp
from PIL import Image

from tests.support.provider_process import ProviderProcess

from .helpers import DeviceKey

CIBA = "urn:openid:params:grant-type:ciba"
KIOSK = ("kiosk", "kiosk-secret-0123456789abcdef")
DESK = ("desk", "desk-secret-0123456789abcdef")


def seed(op: ProviderProcess) -> None:
    op.cli("users", "add", "alice", "--password", "alice-password", "--name", "Alice Liddell")
    op.cli("users", "add", "bob", "--password", "bob-password", "--name", "Bob")
    op.cli("clients", "add", KIOSK[0], "--secret", KIOSK[1], "--name", "Library kiosk",
           "--polling-interval", "1", "--scope", "openid email profile")
    op.cli("clients", "add", DESK[0], "--secret", DESK[1], "--name", "Bank desk",
           "--polling-interval", "1", "--user-code-required")


def signed_in(op: ProviderProcess, username: str, password: str) -> requests.Session:
    s = requests.Session()
    page = s.get(op.url("/account/login"), timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(op.url("/account/login"), timeout=10,
               data={"csrf_token": csrf, "username": username, "password": password})
    assert r.status_code == 200 and username in r.text
    return s


def qr_from_enroll_page(session: requests.Session, op: ProviderProcess) -> str:
    """Open "Enroll a device", decode the QR code of the PNG the page shows (zxing-cpp)."""
    page = session.get(op.url("/account/devices/enroll"), timeout=10).text
    data_uri = re.search(r'id="enroll-qr" src="data:image/png;base64,([^"]+)"', page).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(data_uri)))
    # A QR code, as a phone's scanner reads it (all formats let zxing report a stray 1D
    # pattern inside the code now and then: one such flake was seen).
    [text] = {b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)}
    assert text in html.unescape(page)  # the same content, as a link to copy
    return text


class Phone(DeviceKey):
    """A device on real time, enrolled over HTTP, listening on a real WebSocket."""

    ws: websocket.WebSocket | None = None

    def enroll(self, uri: str, name: str = "Phone", base: str | None = None) -> "Phone":
        query = parse_qs(urlsplit(uri).query)
        self.base = base or query["base"][0]
        r = requests.post(self.base + "/device/enroll", timeout=10,
                          json=self.enroll_body(query["code"][0], name))
        assert r.status_code == 201, r.text
        return self.enrolled(r.json())

    def connect(self, base: str | None = None, query: bool = False, **auth_claims) -> dict:
        """Open the WebSocket; returns the hello message."""
        ws_url = (base or self.base).replace("http", "ws", 1) + "/device/ws"
        token = self.auth("GET", "/device/ws", **auth_claims)
        if query:
            self.ws = websocket.create_connection(ws_url + "?device_auth=" + token, timeout=10)
        else:
            self.ws = websocket.create_connection(
                ws_url, header=[f"Authorization: Device {token}"], timeout=10)
        return self.receive()

    def receive(self, timeout: float = 10) -> dict:
        self.ws.settimeout(timeout)
        raw = self.ws.recv()
        if not raw:
            raise ConnectionError("the server closed the WebSocket")
        return json.loads(raw)

    def receive_type(self, kind: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(0.1, deadline - time.monotonic()))
            if message["type"] == kind:
                return message

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def decide(self, request: dict, accept: bool, base: str | None = None,
               binding_message: str | None = ...) -> requests.Response:
        rid = request["request_id"]
        path = f"/device/requests/{rid}/decision"
        shown = request["binding_message"] if binding_message is ... else binding_message
        return requests.post((base or self.base) + path, timeout=10,
                             json={"decision": self.decision(rid, accept, shown)},
                             headers=self.headers("POST", path))

    def user_code(self) -> str:
        return pyotp.TOTP(self.totp["secret"]).now()


def bc_authorize(base: str, creds=KIOSK, **form) -> requests.Response:
    data = {"scope": "openid email", "login_hint": "alice", "binding_message": "LIB-4 7F3K",
            **form}
    return requests.post(base + "/bc-authorize", data=data, auth=creds, timeout=10)


def poll_tokens(base: str, auth_req_id: str, creds=KIOSK, timeout: float = 20) -> dict:
    interval, deadline = 1.0, time.monotonic() + timeout
    while True:
        body = requests.post(base + "/token", auth=creds, timeout=10,
                             data={"grant_type": CIBA, "auth_req_id": auth_req_id}).json()
        if body.get("error") == "slow_down":
            interval += 1
        elif body.get("error") != "authorization_pending" or time.monotonic() > deadline:
            return body
        time.sleep(interval)
