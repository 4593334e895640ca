"""The Gotify channel, against a real provider process configured with a Gotify server (the
spec-built fake from tests/support): enroll with push=gotify, and a request made by a client
reaches the device through a Gotify message; first with the core, then with the real app."""

from __future__ import annotations

import pytest

from app_remote import card_for, enroll_from_qr_image, open_qr_image
from conftest import wait_for
from provider_process import ProviderProcess
from tests.support.gotify_server import GotifyServer

pytestmark = pytest.mark.slow

ADMIN = ("root", "gotify-admin-pw-for-device-tests")


@pytest.fixture(scope="module")
def gotify():
    server = GotifyServer(*ADMIN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gotify_provider(tmp_path_factory, gotify):
    env = {"CIBA_GOTIFY_URL": gotify.url, "CIBA_GOTIFY_ADMIN_USER": ADMIN[0],
           "CIBA_GOTIFY_ADMIN_PASSWORD": ADMIN[1]}
    with ProviderProcess(tmp_path_factory.mktemp("provider-gotify"), env=env).setup() as process:
        yield process


def test_a_request_arrives_through_gotify(gotify_provider, gotify, service, tmp_path):
    link = gotify_provider.enrollment_png(tmp_path / "qr.png")
    done = []
    service.enroll_text(link, done.append, pytest.fail, push="gotify")
    account = wait_for(lambda: done and done[0])
    assert account.push == "gotify" and account.channel["client_token"]
    wait_for(lambda: service.states.get(account.device_id) == "connected")

    auth_req_id = gotify_provider.bc_authorize("VIA GOTIFY")
    item = wait_for(lambda: next((p for p in service.inbox.pending()
                                  if p.binding_message == "VIA GOTIFY"), None), timeout=20)
    results = []
    service.decide(item.request_id, True, results.append)
    wait_for(lambda: results)
    assert results[0].outcome == "approved"
    assert gotify_provider.poll_tokens(auth_req_id)[0] == 200
    assert not gotify.violations


def test_a_gotify_device_notices_a_request_decided_elsewhere(gotify_provider, service, tmp_path):
    from device_app.core.api import ProviderClient

    done = []
    service.enroll_text(gotify_provider.enrollment_png(tmp_path / "qr.png"), done.append, pytest.fail,
                        push="gotify")
    account = wait_for(lambda: done and done[0])
    gotify_provider.bc_authorize("ELSEWHERE")
    item = wait_for(lambda: next((p for p in service.inbox.pending()
                                  if p.binding_message == "ELSEWHERE"), None), timeout=20)
    other = ProviderClient(account, service.store.keys.load(account.device_id))
    assert other.decide(item.request_id, False, "ELSEWHERE").outcome == "denied"
    service.tick(now=item.received_at + 60)  # time for a periodic re-fetch
    wait_for(lambda: service.inbox.get(item.request_id) is None)


def test_a_gotify_device_learns_that_its_approval_was_withdrawn(gotify_provider, gotify, service,
                                                                 tmp_path):
    """The request left the pending list when it was approved, so the silent ``cancelled``
    message is what tells the device; it asks the provider before saying so."""
    done, notices = [], []
    service.on_notice = lambda kind, text: notices.append((kind, text))
    service.enroll_text(gotify_provider.enrollment_png(tmp_path / "qr.png"), done.append,
                        pytest.fail, push="gotify")
    account = wait_for(lambda: done and done[0])
    wait_for(lambda: service.states.get(account.device_id) == "connected")
    auth_req_id = gotify_provider.bc_authorize("GOTIFY WITHDRAWN")
    item = wait_for(lambda: next((p for p in service.inbox.pending()
                                  if p.binding_message == "GOTIFY WITHDRAWN"), None), timeout=20)
    results = []
    service.decide(item.request_id, True, results.append)
    assert wait_for(lambda: results)[0].outcome == "approved"
    assert gotify_provider.bc_cancel(auth_req_id).json() == {"status": "cancelled"}
    entry = wait_for(lambda: next((e for e in service.inbox.history()
                                   if e.request_id == item.request_id
                                   and e.outcome == "cancelled"), None), timeout=20)
    assert entry.reason == ("You approved it, but Library kiosk cancelled before signing you in: "
                            "nothing was shared.")
    assert ("cancelled", entry.reason) in notices
    assert gotify_provider.token(auth_req_id)[1]["error"] == "access_denied"
    assert not gotify.violations


def test_a_forged_gotify_cancel_changes_nothing(gotify_provider, service, tmp_path):
    """A message is only a nudge: a ``cancelled`` the provider does not confirm is ignored."""
    done = []
    service.enroll_text(gotify_provider.enrollment_png(tmp_path / "qr.png"), done.append,
                        pytest.fail, push="gotify")
    account = wait_for(lambda: done and done[0])
    auth_req_id = gotify_provider.bc_authorize("GOTIFY KEPT")
    item = wait_for(lambda: next((p for p in service.inbox.pending()
                                  if p.binding_message == "GOTIFY KEPT"), None), timeout=20)
    results = []
    service.decide(item.request_id, True, results.append)
    assert wait_for(lambda: results)[0].outcome == "approved"
    asked = []
    real_get = service.client(account.device_id).get_request
    service.client(account.device_id).get_request = lambda rid: asked.append(rid) or real_get(rid)
    forged = {"extras": {"ciba::request": {"event": "request_resolved", "status": "cancelled",
                                           "request_id": item.request_id,
                                           "issuer": account.issuer}}}
    service._gotify_nudge(account, forged)
    wait_for(lambda: asked)
    assert gotify_provider.poll_tokens(auth_req_id)[0] == 200
    entry = service.inbox.entry(item.request_id)
    assert entry.outcome == "approved"


def test_the_app_enrolls_for_gotify_and_gets_requests_through_it(app, gotify_provider, tmp_path):
    enroll_from_qr_image(app, gotify_provider, tmp_path, push="gotify")
    state = app.wait_state(lambda s: s["accounts"])
    assert "Requests arrive through a Gotify server" in state["accounts"][0]["details"]
    auth_req_id = gotify_provider.bc_authorize("GOTIFY APP")
    state = app.wait_state(lambda s: card_for(s, "GOTIFY APP"), timeout=20)
    app.press("accept_button", card=card_for(state, "GOTIFY APP")["request_id"])
    assert gotify_provider.poll_tokens(auth_req_id)[0] == 200
    assert state["accounts"][0]["state"] == "Connected"


def test_the_app_explains_a_provider_without_gotify(app, provider, tmp_path):
    provider.enrollment_png(tmp_path / "qr.png")
    app.wait_state(lambda s: s["screen"] == "welcome")
    app.press("more_options")
    app.press("push_gotify")
    open_qr_image(app, str(tmp_path / "qr.png"))
    state = app.wait_state(lambda s: s["welcome_status"].startswith("The provider refused"), timeout=20)
    assert not state["enrolled"]
