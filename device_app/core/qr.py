"""Reading an enrollment QR code from an image file (or a camera frame) with zxing-cpp.

zxing-cpp is imported when first needed: a build without it (python-for-android has no recipe
for it yet, see buildozer.spec) still starts, offers "Paste enrollment link" only, and says so.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


class NoQRCode(ValueError):
    """No QR code could be read from the image."""


def available() -> bool:
    """Whether QR codes can be read here (zxing-cpp is installed)."""
    try:
        import zxingcpp  # noqa: F401
    except ImportError:
        return False
    return True


def decode_image(image: Image.Image) -> str:
    """The text of the first QR code found in ``image``."""
    try:
        import zxingcpp
    except ImportError:
        raise NoQRCode("This build cannot read QR codes (zxing-cpp is missing): paste the "
                       "enrollment link instead.") from None
    # QR codes only, as the camera path reads them (core/frames.py): another format's false
    # positive must not be taken for the enrollment link.
    qr_only = zxingcpp.BarcodeFormat.QRCode
    for result in zxingcpp.read_barcodes(image.convert("RGB"), formats=qr_only):
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
