"""QR codes of enrollment URIs: a PNG (for the account page, as a data: URI) and terminal text."""

from __future__ import annotations

import base64
import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def _make(text: str, box_size: int = 8, border: int = 4) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    code.add_data(text)
    code.make(fit=True)
    return code


def png_bytes(text: str, box_size: int = 8) -> bytes:
    buffer = io.BytesIO()
    _make(text, box_size).make_image(fill_color="black", back_color="white").save(buffer, "PNG")
    return buffer.getvalue()


def png_data_uri(text: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(text)).decode()


def terminal_text(text: str) -> str:
    """Half-block characters, dark on light (scannable on most terminals)."""
    out = io.StringIO()
    _make(text, border=2).print_ascii(out=out, invert=True)
    return out.getvalue()
