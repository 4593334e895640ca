"""Draw the app icon (assets/icon.png, 512 px) with Pillow: a shield with a check mark.

Run: python assets/make_icon.py   (drawn at 4x and downsampled for smooth edges)
It also writes device_app/ui/icon.png (256 px), the copy a non-editable install carries.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BLUE_TOP = (42, 110, 199)
BLUE_BOTTOM = (22, 62, 130)
WHITE = (255, 255, 255, 255)
GREEN = (30, 142, 62, 255)


def draw(size: int = 512, scale: int = 4) -> Image.Image:
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    gradient = Image.new("RGBA", (big, big))
    pixels = ImageDraw.Draw(gradient)
    for y in range(big):
        t = y / (big - 1)
        colour = tuple(int(a + (b - a) * t) for a, b in zip(BLUE_TOP, BLUE_BOTTOM)) + (255,)
        pixels.line([(0, y), (big, y)], fill=colour)
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, big - 1, big - 1], radius=int(big * 0.22), fill=255)
    image.paste(gradient, (0, 0), mask)

    d = ImageDraw.Draw(image)
    u = big / 100  # drawing unit: 1 % of the icon
    # shield outline: top, right side, curved bottom (approximated by points), left side
    points = [(50 * u, 15 * u), (79 * u, 25 * u), (79 * u, 47 * u)]
    for i in range(1, 21):
        t = i / 20
        x = 79 * u + (50 * u - 79 * u) * t
        y = 47 * u + (86 * u - 47 * u) * (t ** 0.6)
        points.append((x, y))
    mirrored = [(100 * u - x, y) for x, y in reversed(points[1:-1])]
    outline = points + mirrored
    d.polygon(outline, fill=WHITE)
    check = [(36 * u, 50 * u), (46 * u, 60 * u), (65 * u, 38 * u)]
    d.line(check, fill=GREEN, width=int(8 * u), joint="curve")
    for x, y in (check[0], check[-1]):
        r = 4 * u
        d.ellipse([x - r, y - r, x + r, y + r], fill=GREEN)
    return image.resize((size, size), Image.LANCZOS)


def main() -> None:
    here = Path(__file__).resolve().parent
    icon = draw(512)
    for path, size in ((here / "icon.png", 512), (here.parent / "device_app" / "ui" / "icon.png", 256)):
        (icon if size == 512 else icon.resize((size, size), Image.LANCZOS)).save(path, optimize=True)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
