"""Client logos (device_app/core/logos.py): https only, a size cap, images only, cached, and a
failure shows the name alone (None) without asking again for a while."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from device_app.core.logos import MAX_BYTES, LogoCache


def png(size=(200, 100)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


class Response:
    def __init__(self, body: bytes, status: int = 200, length: str | None = None) -> None:
        self.body, self.status_code = body, status
        self.headers = {"Content-Length": length} if length else {}

    def iter_content(self, size):
        for i in range(0, len(self.body), size):
            yield self.body[i:i + size]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Session:
    def __init__(self, response: Response) -> None:
        self.response, self.calls = response, []

    def get(self, url, **kwargs):
        self.calls.append((url, kwargs))
        return self.response


def test_a_logo_is_fetched_once_checked_and_shrunk(tmp_path):
    session = Session(Response(png()))
    logos = LogoCache(tmp_path, session)
    path = logos.fetch("https://shop.example/logo.png")
    assert path and Image.open(path).size == (96, 48)
    assert logos.fetch("https://shop.example/logo.png") == path  # cached
    assert len(session.calls) == 1
    assert session.calls[0][1]["allow_redirects"] is False and session.calls[0][1]["timeout"] == 5


@pytest.mark.parametrize("url, response", [
    ("http://shop.example/logo.png", Response(png())),  # not https
    ("https://shop.example/big.png", Response(b"x" * (MAX_BYTES + 1))),
    ("https://shop.example/big.png", Response(png(), length=str(MAX_BYTES + 1))),
    ("https://shop.example/page", Response(b"<html>not an image</html>")),
    ("https://shop.example/gone.png", Response(b"", status=404)),
])
def test_a_bad_logo_is_not_shown_and_not_asked_for_again_soon(tmp_path, url, response):
    session = Session(response)
    logos = LogoCache(tmp_path, session)
    assert logos.fetch(url) is None
    assert logos.fetch(url) is None
    assert len(session.calls) <= 1
