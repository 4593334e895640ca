"""Reading an enrollment QR code from an image file (or a camera frame) with zxing-cpp."""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from PIL import Image


class NoQRCode(ValueError):
    """No QR code could be read from the image."""


def decode_image(image: Image.Image) -> str:
    """The text of the first QR code found in ``image``."""
    for result in zxingcpp.read_barcodes(image.convert("RGB")):
        if result.valid and result.text:
            return result.text
    raise NoQRCode("No QR code found in this image.")


def decode_file(path: str | Path) -> str:
    """The text of the first QR code in the image file at ``path``."""
    try:
        with Image.open(path) as image:
            return decode_image(image)
    except (OSError, ValueError) as exc:
        if isinstance(exc, NoQRCode):
            raise
        raise NoQRCode(f"Cannot read {Path(path).name} as an image.") from exc
