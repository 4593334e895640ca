"""The fake Gotify server keeps the spec's token rules and reports what breaks its schemas."""
from __future__ import annotations

import json

import pytest
import requests
import websocket

from tests.support.gotify_server import GotifyServer

ADMIN = ("admin", "admin")


@pytest.fixture
def gotify():
    with GotifyServer() as server:
        yield server


@pytest.fixture
def alice(gotify):
    """A non-admin user with one application and one client."""
    return {**gotify.add_account("alice", "wonderland"), "auth": ("alice", "wonderland")}


def _token_kwargs(where: str, token: str) -> dict:
    return {"header": {"headers": {"X-Gotify-Key": token}},
            "query": {"params": {"token": token}},
            "bearer": {"headers": {"Authorization": f"Bearer {token}"}}}[where]


@pytest.mark.parametrize("where", ["header", "query", "bearer"])
def test_client_token_in_each_place_reads_applications(gotify, alice, where):
    response = requests.get(f"{gotify.url}/application",
                            **_token_kwargs(where, alice["client"]["token"]))
    assert response.status_code == 200
    assert [a["name"] for a in response.json()] == ["ciba"]
    assert gotify.violations == []


@pytest.mark.parametrize("where", ["header", "query", "bearer"])
def test_application_token_in_each_place_creates_a_message(gotify, alice, where):
    response = requests.post(f"{gotify.url}/message", json={"message": "hi"},
                             **_token_kwargs(where, alice["app"]["token"]))
    assert response.status_code == 200
    assert response.json()["appid"] == alice["app"]["id"]
    assert gotify.violations == []


@pytest.mark.parametrize("method, path", [("GET", "/application"), ("GET", "/message"),
                                          ("GET", "/client"), ("DELETE", "/message")])
def test_application_token_is_refused_outside_post_message(gotify, alice, method, path):
    response = requests.request(method, f"{gotify.url}{path}",
                                headers={"X-Gotify-Key": alice["app"]["token"]})
    assert response.status_code == 401
    assert response.json() == {
        "error": "Unauthorized", "errorCode": 401,
        "errorDescription": "you need to provide a valid access token or user credentials "
                            "to access this api"}


@pytest.mark.parametrize("kwargs", [{}, {"auth": ("alice", "wrong")},
                                    {"headers": {"X-Gotify-Key": "Cnot-a-token"}}])
def test_missing_or_wrong_credentials_are_401(gotify, alice, kwargs):
    assert requests.get(f"{gotify.url}/client", **kwargs).status_code == 401


def test_user_management_needs_an_admin(gotify, alice):
    assert requests.get(f"{gotify.url}/user", auth=alice["auth"]).status_code == 403
    listed = requests.get(f"{gotify.url}/user", auth=ADMIN)
    assert listed.status_code == 200
    assert {u["name"] for u in listed.json()} == {"admin", "alice"}
    assert all("pass" not in u for u in listed.json())


def test_elevated_operations_need_basic_auth_or_an_elevated_client(gotify, alice):
    token = {"X-Gotify-Key": alice["client"]["token"]}
    other = gotify.add_client(alice["user"]["id"], "laptop")
    url = f"{gotify.url}/client/{other['id']}"
    refused = requests.delete(url, headers=token)
    assert (refused.status_code, refused.json()["errorDescription"]) == (
        403, "session not elevated")
    elevate = requests.post(f"{gotify.url}/client/{alice['client']['id']}/elevate",
                            json={"durationSeconds": 60}, auth=alice["auth"])
    assert elevate.status_code == 204
    assert requests.delete(url, headers=token).status_code == 200
    assert gotify.violations == []


def test_create_user_with_basic_admin_auth(gotify):
    response = requests.post(f"{gotify.url}/user", auth=ADMIN,
                             json={"name": "bob", "pass": "builder", "admin": False})
    assert response.status_code == 200
    assert response.json()["name"] == "bob"
    again = requests.post(f"{gotify.url}/user", auth=ADMIN,
                          json={"name": "bob", "pass": "x", "admin": False})
    assert again.status_code == 400
    assert gotify.violations == []


def test_post_message_with_user_credentials_needs_an_owned_appid(gotify, alice):
    url = f"{gotify.url}/message"
    assert requests.post(url, json={"message": "m"}, auth=alice["auth"]).status_code == 400
    mine = requests.post(url, json={"message": "m", "appid": alice["app"]["id"]},
                         auth=alice["auth"])
    assert mine.status_code == 200
    admin_app = gotify.add_application(1, "admin's")
    theirs = requests.post(url, json={"message": "m", "appid": admin_app["id"]},
                           auth=alice["auth"])
    assert theirs.status_code == 404


@pytest.mark.parametrize("method, path, kwargs, expected", [
    ("POST", "/application", {"json": {"description": "no name"}}, "'name' is a required"),
    ("POST", "/message", {"json": {"message": "m", "priority": "high"}}, "'high' is not"),
    ("POST", "/message", {"json": {"message": "m", "extras": []}}, "is not of type 'object'"),
    ("POST", "/client", {"data": "name=x",
                         "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
     "content type"),
    ("POST", "/client", {"data": "{", "headers": {"Content-Type": "application/json"}},
     "not JSON"),
    ("GET", "/message", {"params": {"limit": 500}}, "500 is greater than the maximum"),
    ("DELETE", "/client/abc", {}, "'abc' is not of type 'integer'"),
])
def test_requests_that_break_the_spec_are_400_and_recorded(gotify, alice, method, path,
                                                           kwargs, expected):
    response = requests.request(method, f"{gotify.url}{path}", auth=alice["auth"], **kwargs)
    assert response.status_code == 400
    assert response.json()["errorCode"] == 400
    assert len(gotify.violations) == 1 and expected in gotify.violations[0]


@pytest.mark.parametrize("method, path", [("GET", "/nowhere"), ("PATCH", "/message"),
                                          ("GET", "/client/1/extra")])
def test_unknown_paths_are_404_and_recorded(gotify, method, path):
    response = requests.request(method, f"{gotify.url}{path}", auth=ADMIN)
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"
    assert gotify.violations == [f"{method} {path}: not in the spec"]


def test_health_and_version_are_public(gotify):
    assert requests.get(f"{gotify.url}/health").json() == {"health": "green",
                                                          "database": "green"}
    assert set(requests.get(f"{gotify.url}/version").json()) == {"version", "commit",
                                                                 "buildDate"}
    assert gotify.violations == []


def test_messages_are_paged_newest_first(gotify, alice):
    for n in range(3):
        gotify.app.test_client().post("/message", json={"message": str(n)},
                                      headers={"X-Gotify-Key": alice["app"]["token"]})
    page = requests.get(f"{gotify.url}/application/{alice['app']['id']}/message",
                        params={"limit": 2}, auth=alice["auth"]).json()
    assert [m["message"] for m in page["messages"]] == ["2", "1"]
    assert page["paging"]["next"].endswith(f"limit=2&since={page['paging']['since']}")
    rest = requests.get(f"{gotify.url}/message", auth=alice["auth"],
                        params={"since": page["paging"]["since"]}).json()
    assert [m["message"] for m in rest["messages"]] == ["0"]
    assert requests.delete(f"{gotify.url}/message", auth=alice["auth"]).status_code == 200
    assert gotify.messages == {}
    assert gotify.violations == []


def _open_stream(gotify, token):
    return websocket.create_connection(f"{gotify.url.replace('http', 'ws')}/stream",
                                       header={"X-Gotify-Key": token}, timeout=3)


def test_stream_pushes_messages_of_the_users_applications(gotify, alice):
    ws = _open_stream(gotify, alice["client"]["token"])
    requests.post(f"{gotify.url}/message", headers={"X-Gotify-Key": alice["app"]["token"]},
                  json={"title": "Login", "message": "LIB-4", "extras": {"ciba::request": {}}})
    pushed = json.loads(ws.recv())
    assert pushed["message"] == "LIB-4" and pushed["extras"] == {"ciba::request": {}}
    assert {"id", "appid", "message", "date"} <= set(pushed)
    ws.close()
    assert gotify.violations == []


def test_stream_refuses_an_application_token(gotify, alice):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _open_stream(gotify, alice["app"]["token"])
    assert refused.value.status_code == 401


def test_deleting_a_client_closes_its_stream(gotify, alice):
    ws = _open_stream(gotify, alice["client"]["token"])
    deleted = requests.delete(f"{gotify.url}/client/{alice['client']['id']}",
                              auth=alice["auth"])
    assert deleted.status_code == 200
    opcode, _ = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_outage_closes_streams_until_the_server_comes_back(gotify, alice, mode):
    ws = _open_stream(gotify, alice["client"]["token"])
    gotify.go_down(mode)
    assert ws.recv_data_frame(control_frame=True)[0] == websocket.ABNF.OPCODE_CLOSE
    if mode == "refuse":
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{gotify.url}/health", timeout=2)
    else:
        assert requests.get(f"{gotify.url}/health").status_code == 503
    gotify.come_back()
    assert requests.get(f"{gotify.url}/health").status_code == 200
    assert gotify.violations == []
