"""A lean load-generating device for bench/ws_fanout.py (``--client lean``): the same protocol
as the app (docs/device-protocol.md §3, §5: a fresh ES256 device-auth JWS per connect, an RFC
6455 opening handshake checked for its 101 and accept key, hello first, pings answered) at a
fraction of the CPU of joserfc + websocket-client, so that one machine can play many devices
without the load generator being what limits a reconnect storm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ECDSA = ec.ECDSA(hashes.SHA256())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LeanDevice:
    """One device: its key, its id, and (once connected) its socket and unread bytes."""

    def __init__(self, issuer: str, url: str, jwk: dict, device_id: str) -> None:
        self.issuer, self.device_id = issuer, device_id
        d = int.from_bytes(base64.urlsafe_b64decode(jwk["d"] + "=="), "big")
        self.key = ec.derive_private_key(d, ec.SECP256R1())
        self.header = _b64(json.dumps({"alg": "ES256", "typ": "device-auth+jwt",
                                       "kid": device_id}).encode())
        parts = urlsplit(url)
        self.address, self.host, self.path = (parts.hostname, parts.port), parts.netloc, parts.path
        self.sock = None
        self.buf = b""

    def auth(self) -> str:
        """A device-auth JWS (protocol §3): ES256, r || s (RFC 7518 §3.4)."""
        iat = int(time.time())
        claims = {"iss": self.device_id, "aud": self.issuer, "htm": "GET", "htu": self.path,
                  "iat": iat, "exp": iat + 60, "jti": secrets.token_urlsafe(32)}
        signing_input = f"{self.header}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), _ECDSA))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def connect(self, socket_module, timeout: float) -> dict:
        """Open the socket and complete the handshake; returns hello (the first message)."""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock = socket_module.create_connection(self.address, timeout=timeout)
        self.sock.sendall((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Device {self.auth()}\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
        if not head.startswith(b"HTTP/1.1 101 ") or b"\r\nSec-WebSocket-Accept: " + accept \
                not in head:
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1"))
        hello = self.message()
        if hello is None or hello.get("type") != "hello":
            raise ConnectionError(f"first message {hello!r}")
        return hello

    def message(self) -> dict | None:
        """The next text message (pings answered on the way); None when the socket ends."""
        while True:
            opcode, payload = self._frame()
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8 or opcode is None:
                return None

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self) -> tuple[int | None, bytes]:
        try:
            first, second = self._take(2)
            n = second & 0x7F
            if n >= 126:
                n = struct.unpack("!H" if n == 126 else "!Q", self._take(2 if n == 126 else 8))[0]
            return first & 0x0F, self._take(n)  # the provider sends no fragments
        except (ConnectionError, OSError):
            return None, b""

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked frame (RFC 6455 §5.3: clients mask); control payloads are < 126 bytes."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)
