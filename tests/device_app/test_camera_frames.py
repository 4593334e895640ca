"""The camera path (device_app.core.frames) fed from a video file: blank frames, a Wi-Fi QR
code that is not an enrollment link, then the provider's enrollment QR code, as a camera
would see them. Needs the camera extra (OpenCV)."""

from __future__ import annotations

import pytest

from device_app.core.frames import (CameraUnavailable, FrameSource, decode_frame,
                                    find_enrollment_link)
from server.devices.qr import png_bytes

cv2 = pytest.importorskip("cv2", reason="pip install '.[camera]'")
np = pytest.importorskip("numpy")

LINK = "ciba-enroll://enroll?base=https%3A%2F%2Fop.example&code=abcdefghijklmnopqrstuvwx"


def frame_of(text: str | None, size: int = 480):
    frame = np.full((size, size * 4 // 3, 3), 200, dtype=np.uint8)
    if text:
        image = cv2.imdecode(np.frombuffer(png_bytes(text, box_size=6), np.uint8), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        y, x = (size - h) // 2, (frame.shape[1] - w) // 2
        frame[y:y + h, x:x + w] = image
    return frame


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "scan.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for text in [None] * 5 + ["WIFI:S:library;T:WPA;P:secret;;"] * 5 + [LINK] * 5:
        writer.write(frame_of(text))
    writer.release()
    return path


def test_the_enrollment_link_is_found_in_a_video(video):
    source = FrameSource(str(video))
    try:
        assert find_enrollment_link(source, every=2) == LINK
    finally:
        source.close()


def test_other_qr_codes_are_passed_over(video):
    frames = list(FrameSource(str(video)))
    assert decode_frame(frames[7]) == ["WIFI:S:library;T:WPA;P:secret;;"]
    assert find_enrollment_link(frames[:10]) is None


def test_a_missing_camera_is_a_clear_error(tmp_path):
    with pytest.raises(CameraUnavailable, match="Cannot open"):
        FrameSource(str(tmp_path / "no-such-video.avi"))
