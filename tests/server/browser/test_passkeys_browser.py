"""Passkeys in real Chromium with its virtual authenticator (CDP WebAuthn domain): alice adds
one on her account page, signs in with it instead of her password, approves a login request
on the approval page with it, and removes it."""

from __future__ import annotations

import pytest

from tests.support.screenshots import screenshot

from .conftest import ALICE, audit_lines, bc_authorize, poll, sign_in

pytestmark = pytest.mark.slow


def virtual_authenticator(context, page) -> tuple:
    """A platform authenticator that holds discoverable credentials and verifies the user."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return cdp, found["authenticatorId"]


def sign_out(page) -> None:
    page.click("#signout")
    page.wait_for_selector("#passkey-signin")


@pytest.fixture(scope="module")
def client(op):
    created = op.cli_json("clients", "add", "passkey-kiosk", "--name", "Passkey kiosk",
                          "--polling-interval", "1")
    return created["client_id"], created["client_secret"]


def test_add_a_passkey_sign_in_with_it_and_approve_with_it(op, context, client):
    page = context.new_page()
    cdp, authenticator = virtual_authenticator(context, page)
    sign_in(page, op)
    page.goto(op.issuer + "/account/")
    page.fill("#passkey-name", "Alice's laptop")
    page.click("#passkey-add")
    page.wait_for_selector("tr[data-passkey=\"Alice's laptop\"]")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1 and credentials["credentials"][0]["isResidentCredential"]
    screenshot(page, "account-passkeys")

    # Sign in with the passkey: no username, no password.
    sign_out(page)
    screenshot(page, "sign-in-passkey")
    page.click("#passkey-signin")
    page.wait_for_url(op.issuer + "/account/")
    assert page.text_content("#username") == ALICE[0]

    # The approval page: sign in there with the passkey, then Accept.
    sign_out(page)
    client_id, secret = client
    auth_req_id = bc_authorize(op, client_id, secret, "PASS-KEY1")
    link = op.approval_link("alice")
    page.goto(link)
    page.wait_for_selector("#passkey-signin")
    page.click("#passkey-signin")
    page.wait_for_selector("#accept")
    assert page.text_content("#binding-message") == "PASS-KEY1"
    page.click("#accept")
    page.wait_for_selector("#state")
    assert page.text_content("#state") == "Request approved"
    tokens = poll(op, client_id, secret, auth_req_id)
    assert tokens.status_code == 200, tokens.text

    events = audit_lines(op, "--user", "alice")
    passkey_sign_ins = [e for e in events if e["event"] == "sign_in"
                        and e["detail"]["method"] == "passkey"]
    assert [e["detail"]["page"] for e in passkey_sign_ins] == ["account", "approval"]
    assert any(e["event"] == "passkey_added" for e in events)
    assert any(e["event"] == "request_approved" and e["actor"] == "console" for e in events)

    # Removed, the passkey no longer signs in.
    page.goto(op.issuer + "/account/")
    page.click("tr[data-passkey=\"Alice's laptop\"] button")
    page.wait_for_load_state()
    assert page.locator("tr[data-passkey]").count() == 0
    sign_out(page)
    page.click("#passkey-signin")
    page.wait_for_function(
        "document.querySelector('#passkey-status').textContent.includes('not known')")
    assert page.url.startswith(op.issuer + "/account/login")


def test_a_cancelled_passkey_prompt_says_so(op, context):
    page = context.new_page()
    cdp, authenticator = virtual_authenticator(context, page)
    # The person declines: the authenticator does not verify them.
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": False})
    page.goto(op.issuer + "/account/login")
    page.click("#passkey-signin")
    page.wait_for_function("document.querySelector('#passkey-status').textContent.length > 30")
    assert "No passkey was used" in page.text_content("#passkey-status") or \
        "not known" in page.text_content("#passkey-status")
    assert page.url.startswith(op.issuer + "/account/login")
