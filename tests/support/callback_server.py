"""A client's notification endpoint for ping/push tests (CIBA §10.2, §10.3): a real HTTP server
on 127.0.0.1 that answers from a script (status and headers per request; 204 once the script is
used up) and records every request it got. Its port can be chosen before it listens, so a test
can first have it "down" (connection refused) and start it later on the same port."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.provider_process import free_port


class CallbackServer:
    def __init__(self, script: list[tuple[int, dict]] | None = None, port: int | None = None,
                 responder=None) -> None:
        """``responder(body, earlier)``, when given, answers instead of the script; ``earlier``
        is how many requests for the same auth_req_id came before."""
        self.responder = responder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/cb"
        self.script = list(script or [])
        self.received: list[dict] = []  # {"authorization", "body", "status"}
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "CallbackServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"null")
                with outer._changed:
                    if outer.responder is not None:
                        earlier = sum(1 for r in outer.received
                                      if r["body"].get("auth_req_id") == body.get("auth_req_id"))
                        status, headers = outer.responder(body, earlier)
                    else:
                        status, headers = outer.script.pop(0) if outer.script else (204, {})
                    outer.received.append({"authorization": self.headers.get("Authorization"),
                                           "body": body, "raw": raw, "status": status})
                    outer._changed.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        """The first ``count`` requests, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} notifications arrived")
                self._changed.wait(left)
            return list(self.received[:count])

    def __enter__(self) -> "CallbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
