"""Camera frames -> enrollment link: the scanning path, without Kivy.

``FrameSource`` reads frames with OpenCV (the optional ``camera`` extra) from a camera index
(``0``) or from a video or image file: the same code serves a real camera and a test, which
feeds it a recorded video of the QR code. ``find_enrollment_link`` decodes every ``every``-th
frame with zxing-cpp and returns the first text that is an enrollment link (other QR codes,
such as a Wi-Fi code in view, are passed over).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import zxingcpp

from .enrollment import EnrollmentLinkError, parse_enrollment_uri


class CameraUnavailable(RuntimeError):
    """OpenCV is not installed, or the camera or file cannot be opened."""


class FrameSource:
    """Frames (numpy BGR arrays) from ``source``: a camera index ("0") or a file path."""

    def __init__(self, source: str | int) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise CameraUnavailable("Install the camera extra (OpenCV) to scan with a camera.") from exc
        self._cv2 = cv2
        target = int(source) if str(source).isdigit() else str(source)
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            raise CameraUnavailable(f"Cannot open the camera {source!r}.")

    def __iter__(self) -> Iterator:
        while True:
            ok, frame = self.capture.read()
            if not ok:
                return
            yield frame

    def close(self) -> None:
        self.capture.release()


def decode_frame(frame) -> list[str]:
    """The texts of the QR codes in one frame (a numpy image array)."""
    return [r.text for r in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode)
            if r.valid and r.text]


def enrollment_link_in(frame) -> str | None:
    for text in decode_frame(frame):
        try:
            parse_enrollment_uri(text)
        except EnrollmentLinkError:
            continue
        return text
    return None


def find_enrollment_link(frames: Iterable, every: int = 1, limit: int | None = None) -> str | None:
    """The first enrollment link seen in ``frames`` (decoding every ``every``-th frame)."""
    for index, frame in enumerate(frames):
        if limit is not None and index >= limit:
            return None
        if index % every == 0:
            found = enrollment_link_in(frame)
            if found:
                return found
    return None
