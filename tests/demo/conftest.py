"""Fixtures for the demo: ``ciba-provider demo`` as a real process, a Chromium browser
(Playwright with Debian's /usr/bin/chromium), and the "phone" that approves or denies."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from tests.support.provider_process import (Process, ProviderProcess, console_script, free_port,
                                            wait_http)



@dataclass
class Demo:
    process: Process
    provider: str
    kiosk: str
    api: str
    password: str
    instance: str


def start_demo(instance: str, *extra: str, ports: tuple[int, int, int] | None = None) -> Demo:
    provider_port, kiosk_port, api_port = ports or (free_port(), free_port(), free_port())
    argv = console_script("ciba-provider", "server.cli") + [
        "demo", "--instance", instance, "--provider-port", str(provider_port),
        "--kiosk-port", str(kiosk_port), "--api-port", str(api_port), *extra]
    process = Process(argv)
    try:
        process.wait_for(r"^Ready\.$", timeout=30)
        kiosk = f"http://127.0.0.1:{kiosk_port}"
        wait_http(kiosk + "/healthz", process=process)
        password = process.wait_for(r"User\s+alice, password (\S+)").group(1)
    except BaseException:
        process.kill()
        raise
    return Demo(process, f"http://127.0.0.1:{provider_port}", kiosk,
                f"http://127.0.0.1:{api_port}", password, instance)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo with the kiosk in poll mode, polling every second."""
    instance = str(tmp_path_factory.mktemp("demo") / "instance")
    running = start_demo(instance, "--fresh", "--delivery", "poll", "--polling-interval", "1")
    yield running
    running.process.interrupt()


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory):
    """A demo whose kiosk asks for 3-second requests, so that an expiry is quick to see."""
    instance = str(tmp_path_factory.mktemp("short-demo") / "instance")
    running = start_demo(instance, "--delivery", "poll", "--polling-interval", "1",
                         "--request-expiry", "3")
    yield running
    running.process.interrupt()


class ConsolePhone:
    """Decides through the console channel: the approval link the provider prints, opened in
    a phone-sized page, alice signs in and presses Accept or Deny.

    TODO(devices): decide with a device enrolled through /device/enroll and a signed decision
    once the device API lands; the tests only call ``decide``."""

    def __init__(self, demo: Demo, browser) -> None:
        self.demo, self.browser = demo, browser

    def decide(self, binding_message: str, action: str) -> None:
        line = self.demo.process.wait_for(
            re.escape(f"(binding message: {binding_message}). Approve or deny at: ") + r"(\S+)")
        context = self.browser.new_context(viewport={"width": 390, "height": 780})
        try:
            page = context.new_page()
            page.goto(line.group(1))
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", self.demo.password)
            page.click("button[type=submit]")
            page.wait_for_selector("#accept")
            assert binding_message in page.content()  # the same message on the phone
            page.click("#accept" if action == "accept" else "#deny")
            page.wait_for_load_state()
        finally:
            context.close()


class DevicePhone:
    """alice's phone as the device app does it (device_app.core): enrolled with the link the
    demo printed, it fetches its pending requests and sends a decision signed with its key."""

    def __init__(self, enrollment_uri: str, data_dir: str) -> None:
        from device_app.core.api import ProviderClient
        from device_app.core.enrollment import enroll, parse_enrollment_uri
        from device_app.core.store import AccountStore

        store = AccountStore(data_dir)
        account = enroll(store, parse_enrollment_uri(enrollment_uri), display_name="Alice's phone")
        self.client = ProviderClient(account, store.keys.load(account.device_id))

    def pending(self, binding_message: str) -> list[dict]:
        """The pending requests showing ``binding_message`` (as the app would list them)."""
        return [r for r in self.client.list_requests() if r.get("binding_message") == binding_message]

    def decide(self, binding_message: str, action: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            shown = [r for r in self.client.list_requests()
                     if r.get("binding_message") == binding_message]
            if shown:
                break
            assert time.monotonic() < deadline, f"no request showing {binding_message!r}"
            time.sleep(0.2)
        result = self.client.decide(shown[0]["request_id"], action == "accept", binding_message)
        assert result.outcome == ("approved" if action == "accept" else "denied"), result


@pytest.fixture(scope="module")
def phone(demo, browser, tmp_path_factory):
    """A device enrolled through the device API when the provider has one, else the console
    approval page (the fallback channel for a user without a device)."""
    try:
        uri = demo.process.wait_for(r"enrollment link into the app: (\S+)", timeout=0.5).group(1)
    except AssertionError:
        return ConsolePhone(demo, browser)
    return DevicePhone(uri, str(tmp_path_factory.mktemp("phone")))

APPROVAL_TOKEN = "demo-tests-approval-token"


class Provider(ProviderProcess):
    """``ciba-provider serve`` with the conformance-testing approval hook switched on."""

    def __init__(self, workdir) -> None:
        super().__init__(workdir, env={"CIBA_AUTOMATED_APPROVAL_TOKEN": APPROVAL_TOKEN})

    def testing_decision(self, auth_req_id: str, action: str) -> None:
        import requests

        response = requests.post(self.issuer + "/testing/ciba-approval",
                                 data={"auth_req_id": auth_req_id, "action": action},
                                 headers={"Authorization": f"Bearer {APPROVAL_TOKEN}"})
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def provider_process(tmp_path_factory):
    with Provider(tmp_path_factory.mktemp("provider")) as provider:
        yield provider
