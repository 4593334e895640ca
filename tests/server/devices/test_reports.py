"""“I didn't request this” (docs/device-protocol.md §6a): a device reports a request; the
operators see it on /admin; a pending request is denied by the report. Also the client's
context (client_uri, logo_uri) in the login_request a device sees (§4)."""

from __future__ import annotations

from server.admin_users import set_admin

from ..notify.conftest import csrf


def report(http, clock, device, request_id: str):
    path = f"/device/requests/{request_id}/report"
    return http.post(path, headers=device.headers("POST", path, clock.now()))


def request_id_of(http, clock, device) -> str:
    r = http.get("/device/requests", headers=device.headers("GET", "/device/requests", clock.now()))
    return r.get_json()["requests"][0]["request_id"]


def test_a_denied_request_is_reported_once_and_operators_see_it(http, clock, provider, phone,
                                                                bc_authorize, decide, alice):
    assert bc_authorize(binding_message="EVIL 1").status_code == 200
    rid = request_id_of(http, clock, phone)
    assert decide(phone, rid, accept=False, binding_message="EVIL 1").status_code == 200
    first = report(http, clock, phone, rid)
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["status"] == "denied" and body["client_name"] == "Library kiosk"
    assert first.headers["Cache-Control"] == "no-store"
    again = report(http, clock, phone, rid)
    assert again.status_code == 200 and again.get_json()["report_id"] == body["report_id"]

    set_admin(provider, "alice", True)
    client = http.application.test_client()
    page = client.get("/account/login")
    client.post("/account/login", data={"username": "alice", "password": "alice-password",
                                        "csrf_token": csrf(page)})
    admin = client.get("/admin/").get_data(as_text=True)
    assert '<strong id="report-count">1</strong> report “I didn\'t request this”' in admin
    page = client.get("/admin/reports/").get_data(as_text=True)
    rows = page.split('id="report-list"')[1].split("</table>")[0]
    assert rows.count('class="report"') == 1
    assert "alice" in rows and "kiosk" in rows and "EVIL 1" in rows and "denied" in rows
    audit = client.get("/admin/audit/?event=request_reported").get_data(as_text=True)
    assert "request_reported" in audit.split("<table", 1)[1]  # a security event (issue 11)


def test_reporting_a_pending_request_denies_it(http, clock, phone, bc_authorize, token):
    auth_req_id = bc_authorize(binding_message="EVIL 2").get_json()["auth_req_id"]
    rid = request_id_of(http, clock, phone)
    r = report(http, clock, phone, rid)
    assert r.status_code == 201 and r.get_json()["status"] == "denied"
    assert token(auth_req_id).get_json()["error"] == "access_denied"


def test_another_users_request_is_not_found(http, clock, enroll, bob, phone, bc_authorize):
    bc_authorize()
    rid = request_id_of(http, clock, phone)
    bobs_phone = enroll(bob)
    r = report(http, clock, bobs_phone, rid)
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"
    assert report(http, clock, phone, "no-such-request").status_code == 404


def test_the_report_needs_device_authentication(http, phone, bc_authorize, clock):
    bc_authorize()
    rid = request_id_of(http, clock, phone)
    r = http.post(f"/device/requests/{rid}/report")
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_token"
    wrong_path = http.post(f"/device/requests/{rid}/report",
                           headers=phone.headers("POST", "/device/requests", clock.now()))
    assert wrong_path.status_code == 401


def test_login_request_carries_the_clients_uri_and_logo(http, clock, phone, make_client, alice):
    shop = make_client("shop", name="Corner Shop", client_uri="https://shop.example",
                       logo_uri="https://shop.example/logo.png")
    r = http.post("/bc-authorize", data={"scope": "openid", "login_hint": "alice"},
                  headers=shop.basic())
    assert r.status_code == 200
    listed = http.get("/device/requests", headers=phone.headers("GET", "/device/requests",
                                                                  clock.now())).get_json()
    item = listed["requests"][0]
    assert (item["client_name"], item["client_uri"], item["logo_uri"]) == (
        "Corner Shop", "https://shop.example", "https://shop.example/logo.png")
