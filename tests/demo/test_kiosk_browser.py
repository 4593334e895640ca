"""The kiosk in a real browser against ``ciba-provider demo``: approve, deny, expire, unknown
user; screenshots of the three main states go to assets/screenshots/ with CIBA_SCREENSHOTS=1."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support.provider_process import console_script
from tests.support.screenshots import screenshot

pytestmark = pytest.mark.slow

BINDING = re.compile(r"^LIB-4 · [2-9A-HJKMNP-TV-Z]{4}$")


def open_kiosk(browser, url: str, width: int = 1280, height: int = 800):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#screen-start:not([hidden])")
    return context, page


@pytest.fixture
def kiosk(demo, browser):
    context, page = open_kiosk(browser, demo.kiosk)
    yield page
    context.close()


def sign_in(page, hint: str = "alice", title: str = "Check your phone") -> str:
    page.fill("#login-hint", hint)
    page.click("#login-button")
    page.wait_for_selector("#screen-waiting:not([hidden])")
    message = page.text_content("#binding-message").strip()
    assert BINDING.match(message), message
    assert page.text_content("#waiting-title") == title
    assert re.match(r"^\d:\d\d$", page.text_content("#countdown"))
    return message


def test_approve_shows_the_loans(kiosk, phone):
    screenshot(kiosk, "kiosk-start", full_page=False)
    message = sign_in(kiosk)
    screenshot(kiosk, "kiosk-waiting", full_page=False)
    phone.decide(message, "accept")
    kiosk.wait_for_selector("#screen-welcome:not([hidden])", timeout=15000)
    assert kiosk.text_content("#welcome-title") == "Welcome, Alice Liddell"
    loans = kiosk.locator("#loans li")
    assert loans.count() >= 2
    assert "Due" in loans.first.text_content()
    screenshot(kiosk, "kiosk-welcome", full_page=False)
    kiosk.click("#done-button")
    kiosk.wait_for_selector("#screen-start:not([hidden])")
    assert kiosk.input_value("#login-hint") == ""


def test_deny_says_so(kiosk, phone):
    message = sign_in(kiosk)
    phone.decide(message, "deny")
    kiosk.wait_for_selector("#screen-message:not([hidden])", timeout=15000)
    assert kiosk.text_content("#message-title") == "Sign-in declined"
    assert "denied on your phone" in kiosk.text_content("#message-text")
    kiosk.click("#again-button")
    kiosk.wait_for_selector("#screen-start:not([hidden])")


def test_expiry_says_time_ran_out(short_demo, browser):
    context, page = open_kiosk(browser, short_demo.kiosk)
    sign_in(page, title="No phone set up")  # a 3-second request; no phone enrolled here
    page.wait_for_selector("#screen-message:not([hidden])", timeout=15000)
    assert page.text_content("#message-title") == "Time ran out"
    assert "expired" in page.text_content("#message-text")
    context.close()


def test_unknown_user_is_told(kiosk):
    kiosk.fill("#login-hint", "nobody-here")
    kiosk.click("#login-button")
    kiosk.wait_for_selector("#screen-message:not([hidden])")
    assert kiosk.text_content("#message-title") == "Member not found"
    assert "nobody-here" in kiosk.text_content("#message-text")


def test_phone_sized_screen_fits(demo, browser):
    context, page = open_kiosk(browser, demo.kiosk, 375, 667)
    sign_in(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the waiting screen scrolls sideways on a phone"
    box = page.locator("#binding-message").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    page.click("#cancel-button")
    page.wait_for_selector("#screen-start:not([hidden])")
    context.close()


def test_cancel_withdraws_the_request_from_the_phone(kiosk, phone):
    message = sign_in(kiosk)
    shown = phone.pending(message)
    assert len(shown) == 1
    kiosk.click("#cancel-button")
    kiosk.wait_for_selector("#screen-start:not([hidden])")
    assert phone.pending(message) == []
    late = phone.client.decide(shown[0]["request_id"], True, message)  # a late Accept
    assert late.outcome == "cancelled", late
    assert "cancelled" in late.reason


def add_member_without_a_phone(demo, username: str) -> None:
    """An operator adds a library member who has not set up the app (the demo's own instance)."""
    subprocess.run(console_script("ciba-provider", "server.cli") + [
        "users", "add", username, "--password", f"{username}-password-123", "--instance",
        demo.instance], check=True, capture_output=True, timeout=60)


def test_a_member_without_a_phone_is_told_what_to_do(kiosk, demo, phone):
    add_member_without_a_phone(demo, "carol")
    sign_in(kiosk, "carol", title="No phone set up")  # ciba_stack_delivery "console"
    assert "No phone will ask about this sign-in" in kiosk.text_content("#waiting-lead")
    help_line = kiosk.locator("#waiting-help")
    help_line.wait_for(state="visible", timeout=15000)
    text = help_line.text_content()
    assert text.startswith("Ask staff") and f"{demo.provider}/account/devices" in text
    assert kiosk.evaluate("document.documentElement.scrollHeight") <= 800  # fits 1280 x 800
    screenshot(kiosk, "kiosk-no-phone", full_page=False)
    kiosk.click("#cancel-button")
    kiosk.wait_for_selector("#screen-start:not([hidden])")


def test_a_member_with_a_phone_is_not_told_to_set_one_up(kiosk, phone):
    message = sign_in(kiosk)  # alice's phone is enrolled: "device"
    phone.pending(message)
    kiosk.wait_for_timeout(3000)  # a few polls of the kiosk's state
    assert kiosk.locator("#waiting-help").is_hidden()
    assert kiosk.text_content("#waiting-title") == "Check your phone"
    kiosk.click("#cancel-button")
    kiosk.wait_for_selector("#screen-start:not([hidden])")
