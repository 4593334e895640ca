"""Make the app's new-request sound (device_app/ui/request.wav): a soft two-note chime, 0.4 s.

Run: python assets/make_request_sound.py   (standard library only; made for this project)

Two sine tones a fifth apart (E6 then B6), each with a 5 ms attack and an exponential decay,
plus a quiet octave for brightness; 22.05 kHz, 16-bit mono, peak at half scale so that it is
noticeable without being harsh. About 17 KB.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 22050
NOTES = ((1318.5, 0.0), (1975.5, 0.12))  # (Hz, start in seconds)
LENGTH = 0.4  # seconds
PEAK = 0.5  # of full scale
TARGET = Path(__file__).resolve().parents[1] / "device_app" / "ui" / "request.wav"


def sample(t: float) -> float:
    value = 0.0
    for frequency, start in NOTES:
        s = t - start
        if s < 0:
            continue
        envelope = min(1.0, s / 0.005) * math.exp(-s * 11)
        value += envelope * (math.sin(2 * math.pi * frequency * s)
                             + 0.25 * math.sin(4 * math.pi * frequency * s))
    fade = min(1.0, (LENGTH - t) / 0.02)  # no click at the end
    return value * fade


def main() -> None:
    samples = [sample(i / RATE) for i in range(int(LENGTH * RATE))]
    scale = PEAK * 32767 / max(abs(v) for v in samples)
    with wave.open(str(TARGET), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"".join(struct.pack("<h", round(v * scale)) for v in samples))
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
