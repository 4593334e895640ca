"""The provider's CPU per device connect, in-process (no HTTP server, no load generator on the
same cores): the device lane (server/web/device_lane.py) against Flask's view of /device/ws.

    python bench/device_connect_cpu.py [--devices 2000] [--rounds 3] [--profile]

Each round enrolls nothing new: every device connects once per app with a fresh device-auth
JWS signed beforehand (outside the measured time), through ``app.wsgi_app`` with an environ as
``serve`` hands it over, on a socket whose peer has gone, so the session ends after its greeting
is built (the write fails). Measured: authentication (ES256, directory, jti record), joining the
hub, the revocation re-check, the pending read, the greeting, and the lane or Flask around them;
not the server's HTTP parsing nor the event loop, which are the same on both paths
(bench/ws_fanout.py measures the whole process). Rounds alternate the two apps; process CPU time.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import os
import pstats
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lean_device import LeanDevice  # noqa: E402
from bench.ws_fanout import prepare  # noqa: E402

ISSUER = "http://127.0.0.1:5000"


def environ(token: str) -> dict:
    mine, peer = socket.socketpair()
    peer.close()
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/device/ws", "SCRIPT_NAME": "",
            "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
            "wsgi.input": None, "wsgi.errors": sys.stderr, "HTTP_HOST": "127.0.0.1:5000",
            "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade",
            "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(os.urandom(16)).decode(),
            "HTTP_SEC_WEBSOCKET_VERSION": "13", "werkzeug.socket": mine,
            "HTTP_AUTHORIZATION": "Device " + token}


def storm(app, devices: list[LeanDevice], profile: cProfile.Profile | None = None) -> float:
    """CPU seconds per connect for every device connecting once."""
    environs = [environ(d.auth()) for d in devices]
    answers = []

    def start_response(status, headers, exc_info=None):
        answers.append(status)

    if profile:
        profile.enable()
    cpu = time.process_time()
    for env in environs:
        app.wsgi_app(env, start_response)
    cpu = time.process_time() - cpu
    if profile:
        profile.disable()
    for env in environs:
        env["werkzeug.socket"].close()
    bad = [a for a in answers if not a.startswith("101")]
    assert not bad, bad[:3]
    return cpu / len(devices)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="the lane's top functions")
    args = ap.parse_args()
    from server.config import Settings
    from server.wiring import create_app

    with tempfile.TemporaryDirectory(prefix="device-cpu-") as tmp:
        entries = prepare(Path(tmp), ISSUER, args.devices, 2)
        devices = [LeanDevice(ISSUER, "ws://127.0.0.1:5000/device/ws", e["jwk"], e["device_id"])
                   for e in entries]
        settings = Settings(instance_path=tmp, issuer=ISSUER)
        apps = {"flask": create_app(replace(settings, device_lane=False)),
                "lane": create_app(replace(settings, device_lane=True))}
        for app in apps.values():
            storm(app, devices[:50])  # warm: the directory's first load, imports
        figures: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(args.rounds):
            for name, app in apps.items():
                figures[name].append(storm(app, devices) * 1e6)
        for name, values in figures.items():
            print(f"{name:6} CPU per connect: " + ", ".join(f"{v:.0f}" for v in values)
                  + f" us (best {min(values):.0f})")
        print(f"lane / flask (best of each): {min(figures['lane']) / min(figures['flask']):.2f}")
        if args.profile:
            profile = cProfile.Profile()
            storm(apps["lane"], devices, profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
