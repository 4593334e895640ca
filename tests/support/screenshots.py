"""README screenshots (assets/screenshots/), written only when asked: the one helper of the
browser tests (``screenshot``) and of the device-app tests under Xvfb (``screenshot_path``).

A plain test run must leave the tree clean, so nothing is written there unless
``CIBA_SCREENSHOTS=1`` is set; then they replace the committed ones (commit them deliberately).
"""

from __future__ import annotations

import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"


def wanted() -> bool:
    return os.environ.get("CIBA_SCREENSHOTS", "") == "1"


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """``assets/screenshots/<name>`` with CIBA_SCREENSHOTS=1, else ``<tmp_path>/<name>``."""
    folder = ASSETS if wanted() else Path(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def screenshot(page, name: str, full_page: bool = True) -> None:
    """Save a Playwright page as ``assets/screenshots/<name>.png`` with CIBA_SCREENSHOTS=1;
    otherwise do nothing."""
    if wanted():
        ASSETS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ASSETS / f"{name}.png"), full_page=full_page)
