"""``python3 quickstart.py``, the README's one command, on a Python without ensurepip (as on a
stock Debian 12 without python3-venv): it makes .venv, takes pip from PyPI, installs the
project, and the installed ``ciba-provider`` runs. Needs PyPI, as installing does."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WITHOUT_ENSUREPIP = (
    "import runpy, sys\n"
    "sys.modules['ensurepip'] = None  # import ensurepip now fails, as on stock Debian 12\n"
    "sys.argv = ['quickstart.py', '--no-start']\n"
    "runpy.run_path('quickstart.py', run_name='__main__')\n")


def _checkout(to: Path) -> None:
    """The committed tree plus the working copy's tracked files (what a user has)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in filter(None, files):
            if (ROOT / name).is_file():
                tar.add(ROOT / name, arcname=name)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        tar.extractall(to, filter="data")


def test_quickstart_installs_without_ensurepip(tmp_path):
    _checkout(tmp_path)
    done = subprocess.run([sys.executable, "-I", "-c", WITHOUT_ENSUREPIP], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no ensurepip here: pip comes from its wheel on PyPI" in done.stdout
    assert "Installed. Start the demo with:" in done.stdout
    provider = tmp_path / ".venv" / "bin" / "ciba-provider"
    shown = subprocess.run([str(provider), "demo", "--help"], capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0 and "--fresh" in shown.stdout
