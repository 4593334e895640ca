"""``ciba-provider demo`` as the README runs it: ready, one sign-in (ping delivery, the default
when the provider offers it), Ctrl-C, nothing left behind; reuse, --fresh and busy ports."""

from __future__ import annotations

import json
import os
import re
import socket
import time

import pytest
import requests
import websocket

from device_app.core.qr import decode_file
from server.demo.cli import STATE_FILE

from .conftest import DevicePhone, start_demo
from tests.support.provider_process import Process, console_script, free_port

pytestmark = pytest.mark.slow

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def approve_by_console_link(demo, binding_message: str, action: str = "accept") -> None:
    """What alice does without a device: open the printed link, sign in, press the button."""
    link = demo.process.wait_for(
        re.escape(f"(binding message: {binding_message}). Approve or deny at: ") + r"(\S+)").group(1)
    browser = requests.Session()
    page = browser.get(link)
    page = browser.post(link, data={"csrf_token": CSRF.search(page.text).group(1),
                                    "action": "sign_in", "username": "alice",
                                    "password": demo.password})
    assert binding_message in page.text
    done = browser.post(link, data={"csrf_token": CSRF.search(page.text).group(1),
                                    "action": action})
    assert done.status_code == 200


def kiosk_until(session: requests.Session, kiosk: str, *states: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = session.get(kiosk + "/api/state").json()
        if state["state"] in states:
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.2)


def test_demo_runs_a_sign_in_and_stops_cleanly_on_ctrl_c(tmp_path):
    demo = start_demo(str(tmp_path / "demo"))
    phone = socket_ = None
    try:
        out = demo.process.output
        assert f"Kiosk      {demo.kiosk}" in out
        assert f"Provider   {demo.provider}" in out
        assert "ping delivery" in out
        discovery = requests.get(demo.provider + "/.well-known/openid-configuration").json()
        assert "ping" in discovery["backchannel_token_delivery_modes_supported"]
        assert requests.get(demo.api + "/loans").status_code == 401

        enrollment = re.search(r"enrollment link into the app: (\S+)", demo.process.output)
        if enrollment:  # the device API is there: enroll alice's phone and keep its socket open
            png = re.search(r"The same QR code as an image: (\S+)", out).group(1)
            assert f"choose Open QR image… and open {png}" in out
            assert png.startswith(str(tmp_path / "demo")) and (os.stat(png).st_mode & 0o777) == 0o600
            assert decode_file(png) == enrollment.group(1)
            phone = DevicePhone(enrollment.group(1), str(tmp_path / "phone"))
            socket_ = websocket.create_connection(
                phone.client.websocket_url(), timeout=10,
                header=phone.client.auth_header("GET", "/device/ws"))
            assert json.loads(socket_.recv())["type"] == "hello"

        kiosk = requests.Session()
        waiting = kiosk.post(demo.kiosk + "/api/login", json={"login_hint": "alice"}).json()
        assert waiting["state"] == "waiting" and 100 <= waiting["remaining"] <= 120
        if phone:
            pushed = json.loads(socket_.recv())
            assert pushed["type"] == "login_request"
            assert pushed["request"]["binding_message"] == waiting["binding_message"]
            phone.decide(waiting["binding_message"], "accept")
        else:
            approve_by_console_link(demo, waiting["binding_message"])
        welcome = kiosk_until(kiosk, demo.kiosk, "welcome", "error", "expired")
        assert welcome["state"] == "welcome", welcome
        assert welcome["name"] == "Alice Liddell" and len(welcome["loans"]) >= 2
        assert kiosk.post(demo.kiosk + "/api/done", json={}).json()["state"] == "start"
    finally:
        status = demo.process.interrupt()  # with the device's WebSocket still open
        if socket_ is not None:
            socket_.close()
    assert status == 0, demo.process.output
    assert "Stopped." in demo.process.output
    assert "Traceback" not in demo.process.output
    time.sleep(0.2)
    assert not demo.process.group_alive(), "a process of the demo's group is still running"
    for url in (demo.provider, demo.kiosk, demo.api):
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{url} still answers"


def test_second_start_reuses_the_folder_and_fresh_replaces_it(tmp_path):
    folder = tmp_path / "demo"
    first = start_demo(str(folder))
    first.process.interrupt()
    assert "Created the demo instance folder" in first.process.output
    assert (folder / STATE_FILE).exists()

    again = start_demo(str(folder))
    again.process.interrupt()
    assert "Reusing the demo instance folder" in again.process.output
    assert again.password == first.password  # alice kept, her password shown again

    fresh = start_demo(str(folder), "--fresh")
    fresh.process.interrupt()
    assert "Replaced the demo instance folder" in fresh.process.output
    assert fresh.password != first.password


def test_fresh_refuses_to_delete_a_folder_that_is_not_a_demo(tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    process = Process(console_script("ciba-provider", "server.cli") + [
        "demo", "--instance", str(folder), "--fresh", "--provider-port", str(free_port()),
        "--kiosk-port", str(free_port()), "--api-port", str(free_port())])
    assert process.proc.wait(timeout=30) == 2
    assert "not a demo instance folder" in process.output
    assert (folder / "notes.txt").read_text() == "keep me"


def test_a_busy_port_is_reported_clearly(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = Process(console_script("ciba-provider", "server.cli") + [
            "demo", "--instance", str(tmp_path / "demo"), "--provider-port", str(free_port()),
            "--kiosk-port", str(port), "--api-port", str(free_port())])
        assert process.proc.wait(timeout=30) == 2
    assert f"port {port} (--kiosk-port) on 127.0.0.1 is already in use" in process.output
    assert "Traceback" not in process.output


def test_ping_delivery_reports_an_expiry_too(tmp_path):
    demo = start_demo(str(tmp_path / "demo"), "--request-expiry", "2")
    try:
        assert "ping delivery" in demo.process.output
        kiosk = requests.Session()
        assert kiosk.post(demo.kiosk + "/api/login",
                          json={"login_hint": "alice"}).json()["state"] == "waiting"
        assert kiosk_until(kiosk, demo.kiosk, "expired", "error", "welcome")["state"] == "expired"
    finally:
        demo.process.interrupt()
