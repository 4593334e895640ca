"""HTTP glue of the device protocol (docs/device-protocol.md): enrollment, pending requests,
signed decisions, and the WebSocket that pushes login requests (ws_handshake.py, ws_transport.py:
the view authenticates and prepares; the socket runs after Flask has answered).

Every call after enrollment carries ``Authorization: Device <jws>``; the WebSocket may carry
the same JWS as ``device_auth`` query parameter. A bad one is refused with 401 before the
upgrade. Protocol errors (``DeviceError``) become JSON in one place.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, g, jsonify, request
from werkzeug.exceptions import NotImplemented as NotImplementedHttp

from .. import jsonsafe, metrics
from ..devices.errors import DeviceError, InvalidRequest, TooManyRequests
from ..devices.reports import report_request
from ..devices.service import DeviceService
from ..notify.websocket import DeviceSocket
from ..storage.models import Device
from . import ws_handshake, ws_transport
from .context import current_provider

log = logging.getLogger(__name__)

bp = Blueprint("device", __name__, url_prefix="/device")

#: Largest message a device may send (protocol §5: close 1009 beyond it); its messages are tiny.
MAX_MESSAGE_SIZE = 16 * 1024


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # Device sockets run after Flask has answered, outside its request context.
    app.wsgi_app = ws_handshake.Upgrade(app.wsgi_app)  # type: ignore[method-assign]


def _service() -> DeviceService:
    return current_provider().devices


@bp.errorhandler(DeviceError)
def device_error(exc: DeviceError):
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    response.headers["Cache-Control"] = "no-store"
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Device error="invalid_token"'
    return response


def _token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "device" and token.strip():
        return token.strip()
    return None


def _device() -> Device:
    return _service().authenticate(_token(), request.method, request.script_root + request.path)


def _json_body():
    raw = request.get_data(cache=False) or b"null"
    try:
        return jsonsafe.loads(raw, current_provider().settings.json_max_depth)
    except jsonsafe.JSONInputError as exc:
        raise InvalidRequest(f"the body: {exc}") from None


def _no_store(response, status: int = 200):
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/enroll")
def enroll():
    body = _service().enroll(_json_body(), request.remote_addr or "unknown")
    return _no_store(jsonify(body), 201)


@bp.get("/enroll")
def enroll_link():
    """The https form of the enrollment link, opened in a browser by mistake."""
    return ("This is a device enrollment link. Open the CIBA device app, choose "
            "'Paste a link' and paste it there.\n", 200,
            {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})


@bp.get("/requests")
def pending_requests():
    return _no_store(jsonify(requests=_service().pending(_device())))


@bp.get("/requests/<request_id>")
def one_request(request_id: str):
    return _no_store(jsonify(_service().request(_device(), request_id)))


@bp.post("/requests/<request_id>/decision")
def decision(request_id: str):
    device = _device()
    return _no_store(jsonify(_service().decide(device, request_id, _json_body())))


@bp.post("/requests/<request_id>/report")
def report(request_id: str):
    """“I didn't request this” (server/devices/reports.py). The body is empty; a JSON object
    is accepted and ignored (room for a future reason field)."""
    device = _device()
    if not isinstance(_json_body(), (dict, type(None))):
        raise InvalidRequest("the body must be empty or a JSON object")
    body, created = report_request(current_provider(), device, request_id)
    return _no_store(jsonify(body), 201 if created else 200)


@bp.before_request
def authenticate_websocket():
    """Refuse a bad upgrade with HTTP 401, and a device already holding
    ``max_sockets_per_device`` sockets in this process with 429, before the handshake."""
    if request.endpoint == "device.websocket":
        if ws_handshake.server_socket(request.environ) is None:
            # `ciba-provider run`: the HTTP server (granian) holds no WebSockets; a load
            # balancer must send /device/ws to the device address (docs/deployment.md).
            raise NotImplementedHttp("this address serves no WebSockets: route /device/ws to "
                                     "the device server's address (docs/deployment.md)")
        token = _token() or request.args.get("device_auth")
        g.device = _service().authenticate(token, "GET", request.script_root + request.path)
        p = current_provider()
        cap = p.settings.max_sockets_per_device
        if cap > 0 and len(p.hub.connections(g.device.user_id, g.device.id)) >= cap:
            raise TooManyRequests(f"this device already holds {cap} WebSocket connections; "
                                  "close one first", retry_after=p.settings.ws_ping_interval)


@bp.route("/ws", websocket=True)  # werkzeug routes only upgrade requests here (others: 400)
def websocket():
    """Accept the upgrade (RFC 6455 §4.2.2): join the hub and read the pending requests now, in
    Flask's context; ``DeviceSession.start`` sends them and runs the socket afterwards."""
    try:
        headers = ws_handshake.upgrade_headers(request.environ)
    except ws_handshake.HandshakeError as exc:
        if exc.version_mismatch:  # RFC 6455 §4.2.2: 426 naming the version we speak
            return _no_store(jsonify(error="invalid_request", error_description=str(exc)),
                             426), {"Sec-WebSocket-Version": "13"}
        raise InvalidRequest(str(exc)) from None
    p = current_provider()
    socket_, detach = ws_transport.accepted(  # gevent: no greenlet held per socket
        request.environ, p.settings.ws_ping_interval, MAX_MESSAGE_SIZE)
    session = DeviceSession(p, g.device, socket_, headers, detach=detach)
    session.prepare()
    request.environ[ws_handshake.ENVIRON_KEY] = session
    return "", 101


class DeviceSession:
    """One device's socket from acceptance to its end (protocol §5): in the hub from before the
    pending requests are read (events meanwhile are held by ``DeviceSocket``), ``hello`` first."""

    def __init__(self, provider, device: Device, ws: ws_transport.WebSocket,
                 headers: list[tuple[str, str]], detach: bool = False) -> None:
        self.p = provider
        self.detach = detach
        self.conn = DeviceSocket(ws, device.id, device.user_id)
        self.device = device
        self.ws = ws
        self.headers = headers
        self.greeting: list[dict] = []
        self.revoked = False

    def prepare(self) -> None:
        p, service = self.p, self.p.devices
        p.hub.add(self.conn)
        metrics.CONNECTED.inc()
        try:
            p.bus.start()
            p.housekeeper.start()
            if not service.is_active(self.device.id):  # revoked while connecting
                self.greeting, self.revoked = [{"type": "device_revoked"}], True
                return
            pending = service.pending(self.device)
            self.greeting = ([{"type": "hello", "device_id": self.device.id,
                               "pending": len(pending)}]
                             + [{"type": "login_request", "request": r}
                                for r in reversed(pending)])
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Leave the hub (the upgrade did not happen, or the socket ended)."""
        self.p.hub.remove(self.conn)
        metrics.CONNECTED.dec()
        self.ws.release()

    def start(self) -> None:
        """Send the 101 and the greeting, then serve frames until the socket ends (or, detached,
        hand the socket to gevent's loop and return)."""
        detached = False
        try:
            self.ws.cork(ws_handshake.switching_protocols(self.headers))
            self.conn.open(self.greeting)
            self.greeting = []
            if self.revoked:
                self.ws.close(1000, "device revoked")
            self.ws.uncork()
            if self.detach:
                self.ws.detach(self._answer, on_end=self.abandon)
                detached = True
            else:
                self.ws.run(self._answer)
        except OSError:
            pass  # the device went away during the greeting
        except Exception:
            log.exception("device socket %s failed", self.device.id[:8])
        finally:
            if not detached:
                self.ws.hang_up()
                self.abandon()

    def _answer(self, raw: str | bytes) -> None:
        reply = answer_frame(raw, self.p.settings.json_max_depth)
        if reply is not None:
            self.conn.send(reply)


def answer_frame(raw: str | bytes, max_depth: int) -> dict | None:
    """The reply to one frame from a device (protocol §5): pong to a ping; an ``error`` message
    for anything else (binary, not JSON, not an object, unknown type). The socket stays open."""
    if isinstance(raw, bytes):
        problem = "binary frames are not part of the protocol"
    else:
        try:
            message = jsonsafe.loads(raw, max_depth)
        except jsonsafe.JSONInputError as exc:
            message, problem = None, str(exc)
        else:
            problem = "" if isinstance(message, dict) else "a frame must be a JSON object"
        if isinstance(message, dict):
            if message.get("type") == "ping":
                return {"type": "pong"}
            problem = "unknown message type"
    return {"type": "error", "error": "invalid_request", "error_description": problem}
