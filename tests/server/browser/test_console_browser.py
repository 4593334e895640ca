"""The operators' console in real Chromium against a real provider: an operator creates a
client, the client runs a CIBA flow that alice approves, the operator cancels another pending
request (the client then gets access_denied), manages a user, makes a registration token, and
finds all of it in the audit log. Screenshots for the README with CIBA_SCREENSHOTS=1."""

from __future__ import annotations

import re

import pytest
import requests

from tests.support.screenshots import screenshot

from .conftest import ALICE, OPERATOR, audit_lines, bc_authorize, poll, sign_in

pytestmark = pytest.mark.slow


@pytest.fixture
def console(op, context):
    page = context.new_page()
    sign_in(page, op, OPERATOR, "/account/login?next=/admin/")
    page.wait_for_url(op.issuer + "/admin/")
    return page


def create_client(page, op, client_id: str, **fields) -> str:
    """Fill the New client form; returns the secret shown once."""
    page.goto(op.issuer + "/admin/clients/")
    page.click("#new-client")
    page.fill("#in-client_id", client_id)
    page.fill("#in-name", fields.get("name", client_id))
    page.fill("#in-polling_interval", "1")
    if "delivery_mode" in fields:
        page.select_option("#in-delivery_mode", fields["delivery_mode"])
    if "notification_endpoint" in fields:
        page.fill("#in-notification_endpoint", fields["notification_endpoint"])
    page.click("#save-client")
    page.wait_for_selector("#saved-title")
    return page.text_content("#client-secret").strip()


def test_a_console_client_completes_a_ciba_flow(op, console, browser):
    secret = create_client(console, op, "front-desk", name="Front desk")
    assert console.text_content("#saved-title") == "Client front-desk created"
    assert '"backchannel_token_delivery_mode": "poll"' in console.text_content("#client-metadata")
    screenshot(console, "console-client-created")
    console.click("#back-to-clients")
    assert console.locator('tr[data-client-id="front-desk"]').count() == 1
    screenshot(console, "console-clients")

    auth_req_id = bc_authorize(op, "front-desk", secret, "DESK-42")
    phone = browser.new_context(viewport={"width": 390, "height": 780})  # alice's own browser
    person = phone.new_page()
    person.goto(op.approval_link("alice"))
    person.fill("input[name=username]", ALICE[0])
    person.fill("input[name=password]", ALICE[1])
    person.click("form button[type=submit].primary")
    person.wait_for_selector("#accept")
    assert person.text_content("#client-name") == "Front desk"
    person.click("#accept")
    person.wait_for_selector("#state")
    phone.close()
    tokens = poll(op, "front-desk", secret, auth_req_id)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "Bearer"


def test_form_errors_are_clear_and_keep_what_was_typed(op, console):
    console.goto(op.issuer + "/admin/clients/new")
    console.fill("#in-client_id", "pinger")
    console.select_option("#in-delivery_mode", "ping")
    console.click("#save-client")
    console.wait_for_selector("#form-error")
    assert "need" in console.text_content("#form-error") and "CIBA §4" in console.text_content(
        "#form-error")
    assert console.input_value("#in-client_id") == "pinger"
    console.fill("#in-notification_endpoint", "https://127.0.0.1:9/cb")
    console.click("#save-client")
    console.wait_for_selector("#saved-title")
    assert "not public" in console.text_content(".warning")  # allowed, with a warning


def test_edit_and_rotate_the_secret(op, console):
    old = create_client(console, op, "teller")
    console.goto(op.issuer + "/admin/clients/teller")
    console.fill("#in-name", "Teller 3")
    console.uncheck("#field-scope input[value=offline_access]")
    console.fill("#in-ciba_lifetime", "120")
    console.check("#field-user_code_required input")
    screenshot(console, "console-client-form")
    console.click("#save-client")
    console.wait_for_selector("#saved-title")
    metadata = console.text_content("#client-metadata")
    assert '"client_name": "Teller 3"' in metadata and '"ciba_lifetime": 120' in metadata
    assert "offline_access" not in metadata and '"backchannel_user_code_parameter": true' in metadata
    console.goto(op.issuer + "/admin/clients/teller")
    console.click("#rotate-secret")
    new = console.text_content("#client-secret").strip()
    assert new != old
    r = requests.post(op.url("/bc-authorize"), auth=("teller", old), timeout=20,
                      data={"scope": "openid", "login_hint": "alice"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    console.goto(op.issuer + "/admin/clients/teller")
    console.once("dialog", lambda dialog: dialog.accept())
    console.click("#remove-client")
    console.wait_for_selector(".notice")
    assert console.locator('tr[data-client-id="teller"]').count() == 0


def test_cancel_a_pending_request(op, console):
    secret = create_client(console, op, "kiosk-7", name="Kiosk 7")
    auth_req_id = bc_authorize(op, "kiosk-7", secret, "CANCEL-ME")
    console.goto(op.issuer + "/admin/requests/")
    row = console.locator("tr[data-client-id=kiosk-7]")
    assert row.locator(".binding-cell").text_content() == "CANCEL-ME"
    assert re.match(r"^\d+:\d\d$", row.locator(".time-left").text_content())
    screenshot(console, "console-requests")
    row.locator("button").click()
    console.wait_for_selector(".notice")
    assert "cancelled" in console.text_content(".notice")
    assert console.locator("tr[data-client-id=kiosk-7]").count() == 0
    r = poll(op, "kiosk-7", secret, auth_req_id)
    assert r.status_code == 400 and r.json()["error"] == "access_denied"
    console.goto(op.issuer + "/admin/audit/?event=request_cancelled")
    first = console.locator("tr.audit-event").first
    assert first.locator(".actor").text_content() == "operator:olga"


def test_manage_a_user(op, console):
    console.goto(op.issuer + "/admin/users/")
    console.click("#new-user")
    console.fill("input[name=username]", "bob")
    console.fill("input[name=password]", "bob-password-1")
    console.fill("input[name=name]", "Bob Builder")
    console.click("#create-user")
    console.wait_for_selector("#person")
    assert console.text_content("#person").strip() == "bob"
    console.click("#disable-user")
    console.wait_for_selector("#disabled-tag")
    r = requests.post(op.url("/bc-authorize"), timeout=20, auth=_any_client(op),
                      data={"scope": "openid", "login_hint": "bob"})
    assert r.status_code == 403 and r.json()["error"] == "access_denied"
    console.click("#enable-user")
    console.wait_for_selector("#disable-user")
    console.fill("#password-form input[name=password]", "bob-new-password")
    console.click("#reset-password")
    console.select_option("#mode-form select", "console")
    console.click("#mode-form button")
    console.wait_for_selector(".notice")
    assert "Console link" in console.text_content("#effective-mode")
    screenshot(console, "console-user")
    console.click("#enroll-device")
    console.wait_for_selector("#enroll-qr")
    assert console.text_content("#enroll-link").startswith("ciba-enroll://")
    # the operator cannot lock themselves out
    console.goto(op.issuer + "/admin/users/olga")
    console.click("#disable-user")
    assert "cannot disable your own account" in console.text_content(".notice")


def _any_client(op) -> tuple[str, str]:
    created = op.cli_json("clients", "add", "probe-" + str(len(op.lines)))
    return created["client_id"], created["client_secret"]


def test_registration_tokens_and_the_audit_log(op, console):
    create_client(console, op, "audit-desk")  # an operator's client_created, in any test order
    console.goto(op.issuer + "/admin/registration/")
    console.fill("input[name=label]", "partner bank")
    console.click("#make-token")
    token = console.text_content("#initial-access-token").strip()
    r = requests.post(op.url("/register"), timeout=20, headers={"Authorization": f"Bearer {token}"},
                      json={"client_name": "Partner", "backchannel_token_delivery_mode": "poll"})
    assert r.status_code == 201, r.text
    console.goto(op.issuer + "/admin/registration/")
    assert console.text_content("tr[data-token-id] .state") == "used"
    console.goto(op.issuer + "/admin/clients/")
    assert "self-registered" in console.text_content(f"tr[data-client-id=\"{r.json()['client_id']}\"]")

    console.goto(op.issuer + "/admin/audit/")
    console.select_option("select[name=event]", "client_created")
    console.click("#filter")
    actors = console.locator("tr.audit-event .actor").all_text_contents()
    assert "operator:olga" in actors and any(a.startswith("registration:") for a in actors)
    screenshot(console, "console-audit")
    # Nothing secret in the log: neither the token nor the client's secret.
    exported = op.cli("audit", "export")
    assert token not in exported and r.json()["client_secret"] not in exported
    assert r.json()["registration_access_token"] not in exported
    assert OPERATOR[1] not in exported and ALICE[1] not in exported


def test_only_operators_get_in(op, context):
    page = context.new_page()
    sign_in(page, op, ALICE)
    response = page.goto(op.issuer + "/admin/clients/")
    assert response.status == 403
    events = audit_lines(op, "--event", "sign_in", "--user", "alice")
    assert events and events[-1]["address"] == "127.0.0.1"
