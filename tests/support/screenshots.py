"""Where a test writes a screenshot: the README's assets/screenshots/ only when asked.

A plain test run must leave the tree clean, so screenshots go to the test's tmp folder unless
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
