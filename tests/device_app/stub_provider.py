"""A small in-test provider that speaks docs/device-protocol.md, for fast core tests.

It checks what a real provider checks on the device side (JWS signature, typ, iss, aud, htm,
htu, iat, exp, single-use jti, binding_message) so that the client code is held to the protocol
even when no real provider runs. The end-to-end tests use the real provider process instead.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

from flask import Flask, g, jsonify, request
from flask_sock import Sock
from joserfc import jws
from joserfc.jwk import ECKey
from werkzeug.serving import make_server


class StubProvider:
    def __init__(self) -> None:
        self.app = Flask(__name__)
        self.sock = Sock(self.app)
        self.codes: dict[str, str] = {}  # enrollment code -> username
        self.devices: dict[str, dict[str, Any]] = {}  # device_id -> {user, key, revoked}
        self.requests: dict[str, dict[str, Any]] = {}
        self.decisions: list[dict[str, Any]] = []
        self.seen_jti: set[str] = set()
        self.sockets: dict[str, list[Any]] = {}
        self.lock = threading.Lock()
        self.issuer = ""
        self.gotify: dict[str, str] | None = None  # {"url", "client_token", "app_token"} when set
        self._routes()

    # lifecycle ---------------------------------------------------------------------------
    def start(self, port: int = 0) -> "StubProvider":
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.port = self.server.server_port
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        for sockets in self.sockets.values():
            for ws in list(sockets):
                try:
                    ws.close()
                except Exception:
                    pass

    # test helpers ------------------------------------------------------------------------
    def new_code(self, username: str = "alice") -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = username
        return code

    def enrollment_uri(self, username: str = "alice") -> str:
        from urllib.parse import quote
        return f"ciba-enroll://enroll?base={quote(self.issuer, safe='')}&code={self.new_code(username)}"

    def create_request(self, username: str = "alice", binding_message: str = "LIB-4 7F3K",
                       lifetime: int = 300, **extra: Any) -> str:
        now = int(time.time())
        request_id = secrets.token_urlsafe(16)
        self.requests[request_id] = {
            "request_id": request_id, "client_name": "Library kiosk", "user": username,
            "binding_message": binding_message,
            "scopes": [{"scope": "openid", "description": "Confirm your identity"}],
            "acr_values": None, "authorization_details": None,
            "created_at": now, "expires_at": now + lifetime, "status": "pending", **extra,
        }
        self.push(username, {"type": "login_request", "request": self.public(request_id)})
        if self.gotify:
            import requests
            requests.post(self.gotify["url"] + "/message", headers={"X-Gotify-Key": self.gotify["app_token"]},
                          json={"title": "Login request", "message": "Open the app"}, timeout=5)
        return request_id

    def resolve(self, request_id: str, status: str) -> None:
        req = self.requests[request_id]
        req["status"] = status
        self.push(req["user"], {"type": "request_resolved", "request_id": request_id, "status": status})

    def push(self, username: str, message: dict[str, Any]) -> None:
        for ws in list(self.sockets.get(username, [])):
            try:
                ws.send(json.dumps(message))
            except Exception:
                pass

    def drop_sockets(self) -> None:
        for sockets in self.sockets.values():
            for ws in list(sockets):
                ws.close()

    def public(self, request_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.requests[request_id].items() if k != "user"}

    def pending_for(self, username: str) -> list[dict[str, Any]]:
        now = time.time()
        items = [self.public(r) for r, v in self.requests.items()
                 if v["user"] == username and v["status"] == "pending" and v["expires_at"] > now]
        return sorted(items, key=lambda r: r["created_at"], reverse=True)

    # protocol ----------------------------------------------------------------------------
    def _verify(self, token: str, typ: str, device_id: str | None = None) -> tuple[str, dict[str, Any]]:
        header = jws.extract_compact(token.encode()).protected
        kid = header.get("kid")
        device = self.devices.get(kid or "")
        if header.get("typ") != typ or header.get("alg") != "ES256" or device is None or device["revoked"]:
            raise PermissionError("bad header or device")
        claims = json.loads(jws.deserialize_compact(token, device["key"]).payload)
        now = time.time()
        if claims.get("iss") != kid or claims.get("aud") != self.issuer:
            raise PermissionError("iss/aud")
        if abs(now - claims.get("iat", 0)) > 60:
            raise PermissionError("iat")
        if typ == "device-auth+jwt" and not (claims["iat"] < claims.get("exp", 0) <= claims["iat"] + 120):
            raise PermissionError("exp")
        with self.lock:
            if claims.get("jti") in self.seen_jti or len(claims.get("jti", "")) < 22:
                raise PermissionError("jti")
            self.seen_jti.add(claims["jti"])
        return kid, claims

    def _device(self, path: str, method: str, token: str | None = None) -> dict[str, Any]:
        header = token or request.headers.get("Authorization", "")
        if not header.startswith("Device "):
            raise PermissionError("no Device auth")
        kid, claims = self._verify(header[7:], "device-auth+jwt")
        if claims.get("htm") != method or claims.get("htu") != path:
            raise PermissionError("htm/htu")
        return self.devices[kid] | {"device_id": kid}

    def _channel(self, push: str) -> dict[str, str]:
        if push == "gotify" and self.gotify:
            return {"type": "gotify", "url": self.gotify["url"], "client_token": self.gotify["client_token"]}
        return {"type": "websocket", "url": self.issuer.replace("http", "ws") + "/device/ws"}

    def _routes(self) -> None:
        app = self.app

        @app.errorhandler(PermissionError)
        def unauthorized(exc: PermissionError):
            return jsonify(error="invalid_token", error_description=str(exc)), 401

        @app.post("/device/enroll")
        def enroll():
            body = request.get_json(silent=True) or {}
            username = self.codes.pop(body.get("code", ""), None)
            if username is None:
                return jsonify(error="invalid_code", error_description="unknown code"), 400
            jwk = body.get("jwk") or {}
            if "d" in jwk or jwk.get("crv") != "P-256":
                return jsonify(error="invalid_request"), 400
            device_id = secrets.token_urlsafe(32)
            self.devices[device_id] = {"user": username, "key": ECKey.import_key(jwk), "revoked": False,
                                       "display_name": body.get("display_name")}
            return jsonify(device_id=device_id, issuer=self.issuer,
                           user={"username": username, "name": username.capitalize() + " Liddell"},
                           totp={"secret": "GC4KDBMYUY5BIFPRE3FIMDYGBRIQEBOR", "digits": 6, "period": 30, "algorithm": "SHA1"},
                           channel=self._channel(body.get("push", "websocket"))), 201

        @app.get("/device/requests")
        def list_requests():
            device = self._device("/device/requests", "GET")
            return jsonify(requests=self.pending_for(device["user"]))

        @app.post("/device/requests/<request_id>/decision")
        def decide(request_id: str):
            device = self._device(f"/device/requests/{request_id}/decision", "POST")
            req = self.requests.get(request_id)
            if req is None or req["user"] != device["user"]:
                return jsonify(error="not_found"), 404
            _, claims = self._verify((request.get_json(silent=True) or {}).get("decision", ""),
                                     "device-decision+jwt")
            if claims.get("request_id") != request_id or claims.get("binding_message") != req["binding_message"]:
                return jsonify(error="invalid_request"), 400
            if req["status"] != "pending":
                return jsonify(error="already_decided", status=req["status"]), 409
            if req["expires_at"] <= time.time():
                return jsonify(error="expired"), 410
            status = {"accept": "approved", "deny": "denied"}[claims["decision"]]
            self.decisions.append({"request_id": request_id, "decision": claims["decision"]})
            self.resolve(request_id, status)
            return jsonify(request_id=request_id, status=status)

        @app.before_request
        def check_ws_upgrade():  # refuse a bad WebSocket upgrade with 401, before the handshake
            if request.path == "/device/ws":
                g.device = self._device("/device/ws", "GET")

        @self.sock.route("/device/ws")
        def ws(sock):
            device = g.device
            user = device["user"]
            self.sockets.setdefault(user, []).append(sock)
            try:
                pending = self.pending_for(user)
                sock.send(json.dumps({"type": "hello", "device_id": device["device_id"], "pending": len(pending)}))
                for item in pending:
                    sock.send(json.dumps({"type": "login_request", "request": item}))
                while True:
                    msg = json.loads(sock.receive())
                    if msg.get("type") == "ping":
                        sock.send(json.dumps({"type": "pong"}))
            finally:
                self.sockets[user].remove(sock)
