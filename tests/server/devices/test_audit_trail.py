"""The audit log over one person's whole story: sign-in, device enrollment, a signed decision,
token issue and refresh, a revocation, operator changes. Each event says who, what, when and
from where; the export (``ciba-provider audit export``) holds none of the secrets used."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from server import cli
from server.admin_clients import get_spec, update_client
from server.admin_users import set_admin, set_disabled

from ...conftest import CIBA, ISSUER
from .helpers import DeviceKey


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def export(settings, capsys, *args: str) -> tuple[list[dict], str]:
    capsys.readouterr()
    assert cli.main(["audit", "export", *args, "--instance", settings.instance_path]) == 0
    text = capsys.readouterr().out
    return [json.loads(line) for line in text.splitlines()], text


def test_the_story_is_recorded_and_holds_no_secret(http, provider, alice, kiosk, settings,
                                                  capsys, pending_ids, decide):
    secrets_used = [kiosk.secret, "alice-password"]
    page = http.get("/account/login")
    http.post("/account/login", data={"username": "alice", "password": "alice-password",
                                      "csrf_token": csrf(page)})
    # enroll a device through the account page's code
    offer = provider.devices.new_enrollment(alice.id)
    code = parse_qs(urlsplit(offer.uri).query)["code"][0]
    device = DeviceKey(ISSUER)
    enrolled = http.post("/device/enroll", json=device.enroll_body(code, "Alice's phone"))
    device.enrolled(enrolled.get_json())
    secrets_used += [code, device.totp["secret"]]
    # a request, decided on the device with a signed decision, then tokens and a refresh
    r = http.post("/bc-authorize", headers=kiosk.basic(), data={
        "scope": "openid offline_access", "login_hint": "alice", "binding_message": "AUD-1"})
    auth_req_id = r.get_json()["auth_req_id"]
    assert decide(device, pending_ids(device)[0], True, "AUD-1").status_code == 200
    tokens = http.post("/token", headers=kiosk.basic(),
                       data={"grant_type": CIBA, "auth_req_id": auth_req_id}).get_json()
    refreshed = http.post("/token", headers=kiosk.basic(), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).get_json()
    secrets_used += [auth_req_id, tokens["access_token"], tokens["refresh_token"],
                     tokens["id_token"], refreshed["access_token"], refreshed["refresh_token"]]
    # she revokes the device on her account page; an operator changes things
    devices_page = http.get("/account/devices/")
    http.post(f"/account/devices/{device.device_id}/revoke",
              data={"csrf_token": csrf(devices_page)})
    set_admin(provider, "alice", True, actor="operator:olga")
    set_disabled(provider, "alice", True, actor="operator:olga")
    spec = get_spec(provider, "kiosk")
    spec.name, spec.polling_interval = "Renamed kiosk", 9
    update_client(provider, spec, actor="operator:olga")

    events, text = export(settings, capsys)
    story = [(e["event"], e["actor"]) for e in events]
    device_actor = f"device:{device.device_id}"
    assert story == [
        ("user_created", "cli:" + story[0][1].split(":", 1)[1]),
        ("client_created", story[1][1]),
        ("sign_in", "user:alice"),
        ("device_enrolled", device_actor),
        ("request_approved", device_actor),
        ("token_issued", "client:kiosk"),
        ("token_refreshed", "client:kiosk"),
        ("device_revoked", "user:alice"),
        ("user_updated", "operator:olga"),
        ("user_updated", "operator:olga"),
        ("client_updated", "operator:olga"),
    ]
    by_event = {e["event"]: e for e in events}
    assert by_event["sign_in"]["address"] == "127.0.0.1"
    assert by_event["sign_in"]["username"] == "alice"
    assert by_event["request_approved"]["client_id"] == "kiosk"
    assert by_event["token_issued"]["detail"]["scope"] == "openid offline_access"
    assert events[-3]["detail"]["changes"] == {"is_admin": [False, True]}
    assert events[-2]["detail"]["changes"] == {"disabled": [False, True]}
    assert by_event["client_updated"]["detail"]["changes"] == {
        "client_name": ["Library kiosk", "Renamed kiosk"], "polling_interval": [None, 9]}
    for secret in secrets_used:
        assert secret not in text, secret


def test_export_filters(http, provider, alice, kiosk, settings, capsys, clock):
    set_admin(provider, "alice", True, actor="operator:olga")
    clock.advance(86400 * 2)
    set_admin(provider, "alice", False, actor="operator:olga")
    events, _ = export(settings, capsys, "--event", "user_updated")
    assert len(events) == 2
    events, _ = export(settings, capsys, "--user", "alice", "--actor", "olga")
    assert len(events) == 2
    events, _ = export(settings, capsys, "--client", "kiosk")
    assert [e["event"] for e in events] == ["client_created"]
    first = export(settings, capsys, "--event", "user_updated")[0][0]["at"]
    events, _ = export(settings, capsys, "--event", "user_updated", "--since", first[:10],
                       "--until", first[:10] + "T23:59:59")
    assert len(events) == 1


@pytest.mark.parametrize("args, message", [(["--since", "yesterday"], "is not a date"),
                                           (["--user", "nobody"], "no user named")])
def test_export_errors_are_clear(settings, provider, capsys, args, message):
    assert cli.main(["audit", "export", *args, "--instance", settings.instance_path]) == 2
    assert message in capsys.readouterr().err


def test_the_console_shows_and_filters_the_log(http, provider, alice, kiosk):
    set_admin(provider, "alice", True, actor="operator:olga")
    page = http.get("/account/login")
    http.post("/account/login", data={"username": "alice", "password": "alice-password",
                                      "csrf_token": csrf(page)})
    text = http.get("/admin/audit/").get_data(as_text=True)
    assert text.count('class="audit-event"') == 4  # user, client, operator flag, sign-in
    text = http.get("/admin/audit/?event=sign_in&user=alice").get_data(as_text=True)
    assert text.count('class="audit-event"') == 1 and "127.0.0.1" in text
    text = http.get("/admin/audit/?user=nobody").get_data(as_text=True)
    assert "No user named nobody" in text and 'class="audit-event"' not in text
    text = http.get("/admin/audit/?since=2000-01-01&until=2000-01-02").get_data(as_text=True)
    assert 'id="no-events"' in text
