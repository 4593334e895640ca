"""A Gotify-compatible server for tests, built only from Gotify's published REST API (spec.json).

Every request is matched against the spec's paths (unknown path or method: 404), its path and
query parameters and its JSON body are validated against the operation's parameters and the
spec's definitions (jsonschema, Draft 4 as Swagger 2.0 uses), and every JSON response and every
streamed message is checked against the operation's response schema. Whatever does not conform
is appended to ``server.violations`` (tests assert it stays ``[]``).

Authentication follows the spec's ``securityDefinitions``: tokens in ``X-Gotify-Key``, the
``token`` query parameter or ``Authorization: Bearer``; basic auth. Application tokens are
accepted only where an operation lists ``appToken*`` (POST /message). ``/user`` operations need
an admin user (createUser: "users can only be created by admin users"); operations described as
"Requires elevated authentication" accept basic auth, or a client token elevated through
POST /client/{id}/elevate.

    with GotifyServer() as gotify:          # admin / admin, registration disabled
        requests.get(f"{gotify.url}/application", auth=("admin", "admin"))
        gotify.go_down()                    # refuse connections (or go_down("503"))
        gotify.come_back()
        assert gotify.violations == []
"""
from __future__ import annotations

import json
import os
import queue
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
from flask import Flask, Response, g, request
from flask_sock import Sock
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.serving import WSGIRequestHandler, make_server

# A copy of ../shared/gotify/spec.json (MIT, see gotify/LICENSE) so CI needs nothing outside the repo.
SPEC_PATH = Path(os.environ.get("GOTIFY_SPEC", Path(__file__).with_name("gotify") / "spec.json"))
ELEVATED = "Requires elevated authentication"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


class GotifyApiError(Exception):
    """Ends a request with the spec's Error model."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


class GotifySpec:
    """spec.json indexed for matching requests and validating instances."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"Gotify spec not found at {path} (set GOTIFY_SPEC)")
        self.doc = json.loads(path.read_text())
        self.routes: list[tuple[re.Pattern[str], dict[str, dict]]] = []
        for template, item in self.doc["paths"].items():
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            ops = {m.upper(): op for m, op in item.items() if m != "parameters"}
            self.routes.append((re.compile(f"^{pattern}$"), ops))

    def match(self, method: str, path: str) -> tuple[dict, dict[str, str]] | None:
        for pattern, ops in self.routes:
            found = pattern.match(path)
            if found and method in ops:
                return ops[method], found.groupdict()
        return None

    def errors(self, schema: dict, instance: Any) -> list[str]:
        wrapped = {"definitions": self.doc["definitions"], "allOf": [schema]}
        return [e.message for e in jsonschema.Draft4Validator(wrapped).iter_errors(instance)]


@dataclass
class _Stream:
    user_id: int
    client_id: int | None
    outbox: queue.Queue = field(default_factory=queue.Queue)


class GotifyServer:
    """A Gotify server on 127.0.0.1 in a background thread; state lives in memory."""

    def __init__(self, admin_user: str = "admin", admin_password: str = "admin",
                 registration: bool = False, port: int = 0, spec: GotifySpec | None = None):
        self.spec = spec or GotifySpec()
        self.registration = registration
        self.requests_log: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.users: dict[int, dict] = {}
        self.apps: dict[int, dict] = {}
        self.clients: dict[int, dict] = {}
        self.messages: dict[int, dict] = {}
        self._ids = {"user": 0, "app": 0, "client": 0, "message": 0}
        self._streams: list[_Stream] = []
        self._lock = threading.RLock()
        self._port, self._http, self._thread = port, None, None
        self._down: str | None = None
        self.app = self._build_app()
        self.add_user(admin_user, admin_password, admin=True)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> "GotifyServer":
        self._http = make_server("127.0.0.1", self._port, self.app, threaded=True,
                                 request_handler=_QuietHandler)
        self._port = self._http.server_port
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,),
                                        daemon=True, name=f"gotify-fake:{self._port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._close_streams(lambda s: True)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._thread.join(timeout=5)
            self._http = None

    def go_down(self, mode: str = "refuse") -> None:
        """Simulate an outage: ``"refuse"`` closes the port, ``"503"`` answers every request
        with 503. Either way open streams are closed."""
        if mode not in ("refuse", "503"):
            raise ValueError(mode)
        self._down = mode
        if mode == "refuse":
            self.stop()
        else:
            self._close_streams(lambda s: True)

    def come_back(self) -> None:
        if self._down == "refuse":
            self.start()  # same port; the state survives like a restart with its database
        self._down = None

    def __enter__(self) -> "GotifyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state (also used by tests to seed data) -------------------------------------------
    def _next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def add_user(self, name: str, password: str, admin: bool = False) -> dict:
        with self._lock:
            user = {"id": self._next_id("user"), "name": name, "pass": password,
                    "admin": admin, "createdAt": _iso(_now())}
            self.users[user["id"]] = user
            return user

    def add_application(self, user_id: int, name: str, description: str = "",
                        default_priority: int = 0) -> dict:
        with self._lock:
            app_id = self._next_id("app")
            app = {"id": app_id, "token": "A" + secrets.token_urlsafe(10)[:14], "name": name,
                   "description": description, "internal": False,
                   "image": "static/defaultapp.png", "createdAt": _iso(_now()),
                   "sortKey": f"a{app_id}", "defaultPriority": default_priority,
                   "user_id": user_id}
            self.apps[app_id] = app
            return app

    def add_client(self, user_id: int, name: str, expires_after: int = 0) -> dict:
        with self._lock:
            client = {"id": self._next_id("client"), "token": "C" + secrets.token_urlsafe(10)[:14],
                      "name": name, "createdAt": _iso(_now()),
                      "expiresAfterInactivitySeconds": expires_after, "user_id": user_id,
                      "elevated_until": None}
            self.clients[client["id"]] = client
            return client

    def add_account(self, name: str, password: str) -> dict[str, dict]:
        """A user with one application ("ciba") and one client ("phone"), for tests."""
        user = self.add_user(name, password)
        return {"user": user, "app": self.add_application(user["id"], "ciba"),
                "client": self.add_client(user["id"], "phone")}

    def requests_to(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests_log if r["method"] == method and r["path"] == path]

    # -- the HTTP layer --------------------------------------------------------------------
    def _build_app(self) -> Flask:
        app = Flask(__name__)
        sock = Sock(app)
        app.before_request(self._dispatch)
        app.after_request(self._check_response)
        app.teardown_request(self._forget_stream)
        sock.route("/stream")(self._stream)
        return app

    def _dispatch(self) -> Response | None:
        """Runs for every request: log, match the spec, authenticate, validate, handle."""
        entry = {"method": request.method, "path": request.path, "query": dict(request.args),
                 "headers": dict(request.headers), "body": request.get_data(as_text=True),
                 "json": None}
        self.requests_log.append(entry)
        g.entry, g.op = entry, None
        try:
            if self._down:
                raise GotifyApiError(503, "the server is down")
            matched = self.spec.match(request.method, request.path)
            if matched is None:
                self.violations.append(f"{request.method} {request.path}: not in the spec")
                raise GotifyApiError(404, "page not found")
            g.op, path_params = matched
            problems = self._parse_params(g.op, path_params)
            self._authenticate(g.op)
            if problems:
                raise GotifyApiError(400, "; ".join(problems))
            if g.op["operationId"] == "streamMessages" and "websocket" in request.headers.get(
                    "Upgrade", "").lower():
                # registered before the handshake, so that an outage right after it closes it
                g.stream = _Stream(g.user["id"], g.client["id"] if g.client else None)
                with self._lock:
                    self._streams.append(g.stream)
                return None  # continues to the WebSocket route
            handler = getattr(self, f"_op_{g.op['operationId']}", None)
            if handler is None:
                self.violations.append(f"{g.op['operationId']}: not implemented by the fake server")
                raise GotifyApiError(501, "not implemented by the fake server")
            with self._lock:
                result = handler(**g.params)
            if isinstance(result, Response):
                return result
            return self.app.json.response(result)
        except GotifyApiError as exc:
            return self._error(exc.status, exc.description)

    def _error(self, status: int, description: str) -> Response:
        body = {"error": HTTP_STATUS_CODES[status], "errorCode": status,
                "errorDescription": description}
        response = self.app.json.response(body)
        response.status_code = status
        return response

    def _parse_params(self, op: dict, path_params: dict[str, str]) -> list[str]:
        """Path/query parameters to g.params, body to g.body; returns the problems found."""
        problems: list[str] = []
        g.params, g.body = {}, None
        for param in op.get("parameters", []):
            name, where = param["name"], param["in"]
            if where == "body":
                problems += self._parse_body(param)
                continue
            raw = path_params.get(name) if where == "path" else request.args.get(name)
            if raw is None:
                if param.get("required"):
                    problems.append(f"missing {where} parameter {name}")
                elif "default" in param:
                    g.params[name] = param["default"]
                continue
            value: Any = raw
            if param.get("type") == "integer":
                value = int(raw) if re.fullmatch(r"-?\d+", raw) else raw
            schema = {k: param[k] for k in ("type", "minimum", "maximum") if k in param}
            problems += [f"{where} parameter {name}: {e}" for e in self.spec.errors(schema, value)]
            g.params[name] = value
        for problem in problems:
            self.violations.append(f"{request.method} {request.path}: {problem}")
        return problems

    def _parse_body(self, param: dict) -> list[str]:
        consumes = g.op.get("consumes", self.spec.doc["consumes"])
        if request.mimetype not in consumes:
            return [f"content type {request.mimetype!r} not in {consumes}"]
        try:
            g.body = json.loads(request.get_data(as_text=True))
        except ValueError:
            return ["body is not JSON"]
        g.entry["json"] = g.body
        return [f"body: {e}" for e in self.spec.errors(param["schema"], g.body)]

    def _authenticate(self, op: dict) -> None:
        """Sets g.user, g.app, g.client from the schemes op['security'] allows."""
        g.user = g.app = g.client = None
        if "security" not in op:
            return
        schemes = {name for requirement in op["security"] for name in requirement}
        token = (request.headers.get("X-Gotify-Key") or request.args.get("token")
                 or _bearer(request.headers.get("Authorization", "")))
        auth = request.authorization
        if "basicAuth" in schemes and auth is not None and auth.type == "basic":
            g.user = next((u for u in self.users.values() if u["name"] == auth.username
                           and u["pass"] == auth.password), None)
        if g.user is None and token:
            if any(s.startswith("clientToken") for s in schemes):
                g.client = next((c for c in self.clients.values() if c["token"] == token), None)
                g.user = self.users.get(g.client["user_id"]) if g.client else None
            if g.user is None and any(s.startswith("appToken") for s in schemes):
                g.app = next((a for a in self.apps.values() if a["token"] == token), None)
                g.user = self.users.get(g.app["user_id"]) if g.app else None
        if g.user is None:
            if op["operationId"] == "createUser" and self.registration and auth is None \
                    and not token:
                return
            raise GotifyApiError(401, "you need to provide a valid access token or user "
                                      "credentials to access this api")
        if request.path.startswith("/user") and not g.user["admin"]:
            raise GotifyApiError(403, "you are not allowed to access this api")
        if ELEVATED in op.get("description", "") and g.client is not None:
            until = g.client["elevated_until"]
            if until is None or until <= _now():
                raise GotifyApiError(403, "session not elevated")

    def _check_response(self, response: Response) -> Response:
        g.entry["status"] = response.status_code
        op = g.get("op")
        if op is None or self._down or op["operationId"] == "streamMessages":
            return response
        declared = op["responses"].get(str(response.status_code))
        if declared is None:
            self.violations.append(
                f"{op['operationId']}: status {response.status_code} not declared")
        elif "schema" in declared:
            for problem in self.spec.errors(declared["schema"], response.get_json(silent=True)):
                self.violations.append(f"{op['operationId']} response: {problem}")
        return response

    def _stream(self, ws: Any) -> None:
        """GET /stream (streamMessages): each new message of the user's applications."""
        while ws.connected:
            try:
                message = g.stream.outbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if message is None:
                break
            ws.send(json.dumps(message))
        ws.close()

    def _forget_stream(self, exc: BaseException | None) -> None:
        stream = g.get("stream")
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)

    def _close_streams(self, which: Any) -> None:
        with self._lock:
            for stream in self._streams:
                if which(stream):
                    stream.outbox.put(None)

    # -- models ------------------------------------------------------------------------------
    def _own(self, table: dict[int, dict], item_id: int, what: str) -> dict:
        item = table.get(item_id)
        if item is None or item["user_id"] != g.user["id"]:
            raise GotifyApiError(404, f"{what} with id {item_id} doesn't exist")
        return item

    @staticmethod
    def _public(item: dict) -> dict:
        hidden = {"pass", "user_id", "elevated_until"}
        return {k: v for k, v in item.items() if k not in hidden}

    def _client_out(self, client: dict) -> dict:
        out = self._public(client)
        if client["elevated_until"] is not None:
            out["elevatedUntil"] = _iso(client["elevated_until"])
        return out

    def _messages_of(self, app_ids: set[int]) -> list[dict]:
        return sorted((m for m in self.messages.values() if m["appid"] in app_ids),
                      key=lambda m: m["id"], reverse=True)

    def _paged(self, messages: list[dict], limit: int, since: int = 0) -> dict:
        if since:
            messages = [m for m in messages if m["id"] < since]
        page = messages[:limit]
        paging = {"size": len(page), "since": page[-1]["id"] if page else 0, "limit": limit}
        if len(messages) > limit:
            paging["next"] = f"{request.path}?limit={limit}&since={paging['since']}"
        return {"paging": paging, "messages": page}

    def _user_app_ids(self) -> set[int]:
        return {a["id"] for a in self.apps.values() if a["user_id"] == g.user["id"]}

    # -- operations (named after the spec's operationId) -----------------------------------
    def _op_getHealth(self) -> dict:
        return {"health": "green", "database": "green"}

    def _op_getVersion(self) -> dict:
        return {"version": "2.1.0", "commit": "fake", "buildDate": _iso(_now())}

    def _op_getUsers(self) -> list[dict]:
        return [self._public(u) for u in self.users.values()]

    def _op_createUser(self) -> dict:
        if g.user is None and g.body["admin"]:
            raise GotifyApiError(403, "you are not allowed to create an admin user")
        if any(u["name"] == g.body["name"] for u in self.users.values()):
            raise GotifyApiError(400, "username already exists")
        return self._public(self.add_user(g.body["name"], g.body["pass"], g.body["admin"]))

    def _op_updateUser(self, id: int) -> dict:
        user = self.users.get(id)
        if user is None:
            raise GotifyApiError(404, "user does not exist")
        user.update(name=g.body["name"], admin=g.body["admin"])
        if g.body.get("pass"):
            user["pass"] = g.body["pass"]
        return self._public(user)

    def _op_deleteUser(self, id: int) -> Response:
        if id not in self.users:
            raise GotifyApiError(404, "user does not exist")
        if self.users[id]["admin"] and sum(u["admin"] for u in self.users.values()) == 1:
            raise GotifyApiError(400, "cannot delete last admin")
        del self.users[id]
        for table in (self.apps, self.clients):
            for key in [k for k, v in table.items() if v["user_id"] == id]:
                del table[key]
        self._close_streams(lambda s: s.user_id == id)
        return Response(status=200)

    def _op_currentUser(self) -> dict:
        return self._public(g.user)

    def _op_getApps(self) -> list[dict]:
        return [self._public(a) for a in self.apps.values() if a["user_id"] == g.user["id"]]

    def _op_createApp(self) -> dict:
        body = g.body
        app = self.add_application(g.user["id"], body["name"], body.get("description", ""),
                                   body.get("defaultPriority", 0))
        if "sortKey" in body:
            app["sortKey"] = body["sortKey"]
        return self._public(app)

    def _op_deleteApp(self, id: int) -> Response:
        self._own(self.apps, id, "app")
        del self.apps[id]
        for message_id in [m["id"] for m in self._messages_of({id})]:
            del self.messages[message_id]
        return Response(status=200)

    def _op_getAppMessages(self, id: int, limit: int, since: int = 0) -> dict:
        self._own(self.apps, id, "app")
        return self._paged(self._messages_of({id}), limit, since)

    def _op_deleteAppMessages(self, id: int) -> Response:
        self._own(self.apps, id, "app")
        for message in self._messages_of({id}):
            del self.messages[message["id"]]
        return Response(status=200)

    def _op_getClients(self) -> list[dict]:
        return [self._client_out(c) for c in self.clients.values()
                if c["user_id"] == g.user["id"]]

    def _op_createClient(self) -> dict:
        client = self.add_client(g.user["id"], g.body["name"],
                                 g.body.get("expiresAfterInactivitySeconds", 0))
        return self._client_out(client)

    def _op_deleteClient(self, id: int) -> Response:
        self._own(self.clients, id, "client")
        del self.clients[id]
        self._close_streams(lambda s: s.client_id == id)
        return Response(status=200)

    def _op_elevateClient(self, id: int) -> Response:
        client = self._own(self.clients, id, "client")
        client["elevated_until"] = _now() + timedelta(seconds=g.body["durationSeconds"])
        return Response(status=204)

    def _op_getMessages(self, limit: int, since: int = 0) -> dict:
        return self._paged(self._messages_of(self._user_app_ids()), limit, since)

    def _op_createMessage(self) -> dict:
        app = g.app
        if app is None:  # client token or basic auth: "appid" names one of the user's apps
            if "appid" not in g.body:
                raise GotifyApiError(400, "appid is required with client or user credentials")
            app = self._own(self.apps, g.body["appid"], "app")
        message = {"id": self._next_id("message"), "appid": app["id"],
                   "message": g.body["message"], "title": g.body.get("title", ""),
                   "priority": g.body.get("priority", app["defaultPriority"]),
                   "date": _iso(_now())}
        if "extras" in g.body:
            message["extras"] = g.body["extras"]
        self.messages[message["id"]] = message
        for problem in self.spec.errors({"$ref": "#/definitions/Message"}, message):
            self.violations.append(f"stream message: {problem}")
        for stream in self._streams:
            if stream.user_id == app["user_id"]:
                stream.outbox.put(message)
        return message

    def _op_deleteMessages(self) -> Response:
        for message in self._messages_of(self._user_app_ids()):
            del self.messages[message["id"]]
        return Response(status=200)

    def _op_deleteMessage(self, id: int) -> Response:
        message = self.messages.get(id)
        if message is None or message["appid"] not in self._user_app_ids():
            raise GotifyApiError(404, f"message with id {id} doesn't exist")
        del self.messages[id]
        return Response(status=200)

    def _op_streamMessages(self) -> None:
        raise GotifyApiError(400, "this endpoint is a WebSocket: send an upgrade request")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:  # the requests_log is the record
        pass


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
