"""Client logos (RFC 7591 ``logo_uri``) fetched safely for the request card.

Only https URLs; at most ``MAX_BYTES`` read, within ``TIMEOUT`` seconds, no redirects to
anything but https; the bytes must decode as an image (Pillow), which is re-encoded as a small
PNG in ``<data dir>/logos/<sha256 of the URL>.png``, so nothing fetched is shown as it came.
A failure is remembered for ``RETRY_AFTER`` seconds; the card then shows the name alone.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from PIL import Image

from .keys import private_dir

log = logging.getLogger(__name__)

MAX_BYTES = 256 * 1024
TIMEOUT = 5
SIZE = 96  # pixels (the card shows it at 40 dp)
RETRY_AFTER = 600


class LogoCache:
    def __init__(self, data_dir: Path | str, session: requests.Session | None = None) -> None:
        self.dir = Path(data_dir) / "logos"
        self.http = session or requests.Session()
        self._failed: dict[str, float] = {}

    def path_for(self, url: str) -> Path:
        return self.dir / (hashlib.sha256(url.encode()).hexdigest() + ".png")

    def cached(self, url: str | None) -> str | None:
        """The local file of an already fetched logo, or None."""
        if not url:
            return None
        path = self.path_for(url)
        return str(path) if path.exists() else None

    def fetch(self, url: str | None) -> str | None:
        """Download, check and store the logo (blocking: call from a worker thread)."""
        if not url or urlsplit(url).scheme != "https":
            return None
        found = self.cached(url)
        if found or time.monotonic() - self._failed.get(url, -RETRY_AFTER) < RETRY_AFTER:
            return found
        try:
            data = self._download(url)
            with Image.open(io.BytesIO(data)) as image:
                image.thumbnail((SIZE, SIZE))
                out = io.BytesIO()
                image.convert("RGBA").save(out, "PNG")
        except (requests.RequestException, OSError, ValueError, Image.DecompressionBombError) as exc:
            log.info("Logo not shown (%s)", type(exc).__name__)
            self._failed[url] = time.monotonic()
            return None
        private_dir(self.dir.parent)
        private_dir(self.dir)
        path = self.path_for(url)
        path.write_bytes(out.getvalue())
        return str(path)

    def _download(self, url: str) -> bytes:
        with self.http.get(url, timeout=TIMEOUT, stream=True, allow_redirects=False) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            if int(response.headers.get("Content-Length") or 0) > MAX_BYTES:
                raise ValueError("too large")
            data = b""
            for chunk in response.iter_content(16384):
                data += chunk
                if len(data) > MAX_BYTES:
                    raise ValueError("too large")
        return data
