"""``ciba-provider demo``: the library-kiosk demo in one command.

One process serves three apps on 127.0.0.1, each on its own port and thread: the provider
(SQLite in the instance folder), the kiosk (a CIBA client of the provider over HTTP) and the
loans API (checks access tokens with the provider's JWKS). The provider is seeded with the
user alice and the kiosk client; the terminal shows the URLs, alice's password and the QR code
that enrolls the device app for her. Ctrl-C (SIGINT) or SIGTERM stops all three.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

DEFAULT_INSTANCE = "ciba-demo"
STATE_FILE = "demo.json"
QR_PNG = "enroll-alice.png"  # the enrollment QR code as an image, rewritten at each start
KIOSK_CLIENT_ID = "library-kiosk"
USERNAME = "alice"
#: The QR code printed at start stays valid this long (seconds), time to install the app.
ENROLLMENT_CODE_LIFETIME = 3600


@dataclass
class Endpoints:
    host: str
    provider_port: int
    kiosk_port: int
    api_port: int
    issuer: str

    @property
    def kiosk(self) -> str:
        return f"http://{self.host}:{self.kiosk_port}"

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.api_port}"


def register(subparsers, common: argparse.ArgumentParser) -> None:
    demo = subparsers.add_parser(
        "demo", parents=[common], help="run the library-kiosk demo (provider, kiosk, loans API)",
        description="Start the provider, the library kiosk and the loans API in one process.")
    demo.add_argument("--host", default="127.0.0.1", help="address of all three servers")
    demo.add_argument("--provider-port", type=int, default=5000, metavar="PORT")
    demo.add_argument("--kiosk-port", type=int, default=5001, metavar="PORT")
    demo.add_argument("--api-port", type=int, default=5002, metavar="PORT")
    demo.add_argument("--fresh", action="store_true",
                      help="delete the demo's instance folder first and start from scratch")
    demo.add_argument("--delivery", choices=["auto", "ping", "poll"], default="auto",
                      help="how the kiosk receives its result (auto: ping when the provider offers it)")
    demo.add_argument("--polling-interval", type=int, default=2, metavar="SECONDS",
                      help="the kiosk's polling interval in poll mode")
    demo.add_argument("--request-expiry", type=int, default=120, metavar="SECONDS",
                      help="how long a sign-in at the kiosk waits for the phone")
    demo.add_argument("--no-upgrade", action="store_true",
                      help="do not upgrade the database schema at start; refuse an old one")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..admin import AdminError

    ports = {"--provider-port": args.provider_port, "--kiosk-port": args.kiosk_port,
             "--api-port": args.api_port}
    if len(set(ports.values())) < 3:
        raise AdminError("the provider, kiosk and API ports must differ")
    issuer = (args.issuer or f"http://{args.host}:{args.provider_port}").rstrip("/")
    where = Endpoints(args.host, args.provider_port, args.kiosk_port, args.api_port, issuer)
    servers = _bind_all(args.host, ports)
    if servers is None:
        return 2
    try:
        # Not $CIBA_INSTANCE_PATH: the demo seeds users and must not land in a real instance.
        instance = _prepare_instance(args.instance or DEFAULT_INSTANCE, args.fresh)
        apps = _build_apps(instance, where, args)
    except BaseException:
        for server in servers.values():
            server.server_close()
        raise
    return _serve(servers, apps, where)


# -- the instance folder and its seed ---------------------------------------------------------
def _prepare_instance(path: str, fresh: bool) -> Path:
    from ..admin import AdminError

    folder = Path(path).resolve()
    marker = folder / STATE_FILE
    if folder.exists() and fresh:
        if not marker.exists() and any(folder.iterdir()):
            raise AdminError(f"{folder} is not a demo instance folder (no {STATE_FILE}); "
                             "refusing to delete it. Choose another --instance.")
        shutil.rmtree(folder)
        print(f"Replaced the demo instance folder {folder} (--fresh).")
    elif marker.exists():
        print(f"Reusing the demo instance folder {folder} "
              "(users, devices and keys are kept; add --fresh to start over).")
    elif folder.exists() and any(folder.iterdir()):
        print(f"Using the existing instance folder {folder} for the demo.")
    else:
        print(f"Created the demo instance folder {folder}.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _seed(provider, where: Endpoints, state: dict, mode: str, interval: int) -> dict:
    """alice (password kept in demo.json) and the kiosk client (re-registered each start)."""
    from ..admin import ClientSpec, add_client, add_user, list_clients, list_users, remove_client
    from .kiosk import NOTIFICATION_PATH

    if not any(u.username == USERNAME for u in list_users(provider)):
        state["alice_password"] = secrets.token_urlsafe(9)
        add_user(provider, USERNAME, state["alice_password"], name="Alice Liddell",
                 email="alice@example.com")
    if any(c["client_id"] == KIOSK_CLIENT_ID for c in list_clients(provider)):
        remove_client(provider, KIOSK_CLIENT_ID)  # ports or delivery mode may have changed
    spec = ClientSpec(client_id=KIOSK_CLIENT_ID, name="City Library kiosk",
                      scope="openid profile email", delivery_mode=mode, polling_interval=interval,
                      notification_endpoint=where.kiosk + NOTIFICATION_PATH if mode == "ping"
                      else None)
    _, secret = add_client(provider, spec)
    state.update(kiosk_client_id=KIOSK_CLIENT_ID, kiosk_secret=secret, kiosk_mode=mode)
    return state


def _build_apps(instance: Path, where: Endpoints, args: argparse.Namespace) -> dict:
    from .. import create_app
    from ..config import Settings
    from .kiosk import KioskConfig, create_kiosk_app
    from .resource_api import create_resource_api

    overrides = {} if "CIBA_ENROLLMENT_CODE_LIFETIME" in os.environ else \
        {"enrollment_code_lifetime": ENROLLMENT_CODE_LIFETIME}
    if args.no_upgrade:
        overrides["db_auto_upgrade"] = False
    settings = Settings.from_env(instance_path=str(instance), issuer=where.issuer, **overrides)
    provider_app = create_app(settings)
    provider = provider_app.extensions["ciba"]
    provider.outbox.start()
    offered = provider.delivery_modes_supported
    mode = args.delivery if args.delivery != "auto" else ("ping" if "ping" in offered else "poll")
    if mode not in offered:
        from ..admin import AdminError

        raise AdminError(f"this provider does not offer {mode} delivery")
    state_path = instance / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    state = _seed(provider, where, state, mode, args.polling_interval)
    state_path.write_text(json.dumps(state, indent=2))
    state_path.chmod(0o600)

    kiosk_app = create_kiosk_app(KioskConfig(
        issuer=where.issuer, client_id=state["kiosk_client_id"], client_secret=state["kiosk_secret"],
        resource_api=where.api, registered_mode=mode, requested_expiry=args.request_expiry,
        no_device_help=("Ask staff, or set up the app: sign in at {account_url} and scan the QR "
                        "code. (In this demo, the link printed in the terminal also works.)"),
        unknown_help=("Nothing on your phone? Link the app first: sign in at {account_url} and "
                      "scan the QR code there, or open the approval link the demo printed.")))
    api_app = create_resource_api(where.issuer)
    return {"provider": provider_app, "kiosk": kiosk_app, "api": api_app, "state": state,
            "mode": mode, "instance": instance}


# -- serving ----------------------------------------------------------------------------------
def _bind_all(host: str, ports: dict[str, int]) -> dict[str, BaseWSGIServer] | None:
    """Bind every port before anything starts, so a busy one is reported and nothing runs."""
    from ..devserver import port_free

    busy = [f"{port} ({flag})" for flag, port in ports.items() if not port_free(host, port)]
    if busy:
        print(f"error: port {', '.join(busy)} on {host} is already in use; "
              "choose another with the option shown, or stop what uses it", file=sys.stderr)
        return None
    names = {"--provider-port": "provider", "--kiosk-port": "kiosk", "--api-port": "api"}
    servers: dict[str, BaseWSGIServer] = {}
    for flag, port in ports.items():
        try:
            # The app is attached later (after seeding); a placeholder keeps the port.
            servers[names[flag]] = make_server(host, port, _not_ready, threaded=True)
        except OSError as exc:
            for server in servers.values():
                server.server_close()
            if exc.errno == errno.EADDRINUSE or "in use" in str(exc):
                print(f"error: port {port} ({flag}) on {host} is already in use", file=sys.stderr)
                return None
            raise
    return servers


def _not_ready(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def _serve(servers: dict[str, BaseWSGIServer], apps: dict, where: Endpoints) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the kiosk polls once a second
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    threads = []
    for name, server in servers.items():
        server.app = apps[name]
        thread = threading.Thread(target=server.serve_forever, name=f"demo-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    _banner(apps, where)
    try:
        while not stop.wait(0.5):
            if not all(t.is_alive() for t in threads):
                print("error: a demo server stopped unexpectedly", file=sys.stderr)
                return 1
    finally:
        print("\nStopping the demo…", flush=True)
        apps["kiosk"].extensions["kiosk"].close()
        for server in servers.values():
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Stopped.", flush=True)
    return 0


def _banner(apps: dict, where: Endpoints) -> None:
    state, provider = apps["state"], apps["provider"].extensions["ciba"]
    password = state.get("alice_password")
    lines = [
        "",
        "CIBA library-kiosk demo",
        f"  Provider   {where.issuer}   (instance {apps['instance']})",
        f"  Kiosk      {where.kiosk}   (open this in a browser)",
        f"  Loans API  {where.api}/loans",
        f"  User       {USERNAME}, password {password}" if password else
        f"  User       {USERNAME} (already existed; password unchanged)",
        f"  Kiosk client {state['kiosk_client_id']}, {apps['mode']} delivery",
        "",
    ]
    print("\n".join(lines), flush=True)
    enrollment = enrollment_for(provider, USERNAME)
    if enrollment:
        qr, offer = enrollment
        minutes = max(1, round((offer.expires_at - provider.clock.now()) / 60))
        png = _write_qr_png(apps["instance"], offer.uri)
        print(f"Enroll the device app for alice (valid {minutes} min, once; a restart of the demo "
              "makes a new one).\nRun ciba-device, then either:\n"
              f"  - choose Open QR image… and open {png}\n"
              "    (type or paste that path into the file box), or\n"
              f"  - choose Paste enrollment link and paste: {offer.uri}\n"
              "  - or, on a device with a camera, choose Scan QR code and scan this:\n")
        print(qr, flush=True)
        print(f"Or paste this enrollment link into the app: {offer.uri}")
        print(f"The same QR code as an image: {png}")
    else:
        print("Device enrollment is not available in this build: each sign-in request prints an\n"
              "approval link below (\"Approve or deny at: ...\"); open it and sign in as alice.")
    print(f"\nNext: open {where.kiosk}, type {USERNAME}, and approve on the phone. "
          "Press Ctrl-C to stop.\nReady.", flush=True)


def _write_qr_png(instance: Path, uri: str) -> Path:
    """The enrollment QR code as a PNG in the instance folder (0600: it enrolls a device)."""
    from ..devices.qr import png_bytes

    path = Path(instance) / QR_PNG
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(png_bytes(uri))
    return path


def enrollment_for(provider, username: str):
    """(terminal QR text, offer) enrolling a device for the user, or None without devices."""
    from ..admin import list_users

    devices = getattr(provider, "devices", None)
    if devices is None or not hasattr(devices, "new_enrollment"):
        return None
    from ..devices.qr import terminal_text

    user = next(u for u in list_users(provider) if u.username == username)
    offer = devices.new_enrollment(user.id)
    return terminal_text(offer.uri), offer
