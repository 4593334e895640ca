#!/usr/bin/env python3
"""One command from a checkout to the running demo: ``python3 quickstart.py``.

Debian's Python refuses ``pip install`` outside a virtual environment (PEP 668), and a stock
Debian 12 lacks ``ensurepip`` (the python3-venv package), so ``python3 -m venv`` fails there.
This script needs only the standard library: it makes ``.venv`` (without pip when ensurepip is
missing, then installs pip from its wheel on PyPI, checked against the SHA-256 PyPI publishes),
installs this project into it, and starts ``ciba-provider demo`` with the arguments given here
(e.g. ``--fresh``). Later runs reuse ``.venv`` and reinstall only when asked (``--reinstall``).

``--app`` also installs the device app's extra (Kivy), ``--no-start`` only installs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import venv
from urllib.parse import urljoin
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYPI_PIP = "https://pypi.org/pypi/pip/json"
OWN_FLAGS = {"--app", "--no-start", "--reinstall"}


def has_ensurepip() -> bool:
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        return False
    return True


def bin_path(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def pip_wheel_from_pypi(folder: Path) -> Path:
    """pip's newest universal wheel, downloaded from PyPI and checked by its SHA-256."""
    with urllib.request.urlopen(PYPI_PIP, timeout=60) as response:
        release = json.load(response)
    wheel = next(f for f in release["urls"]
                 if f["packagetype"] == "bdist_wheel" and f["filename"].endswith("-py3-none-any.whl"))
    path = folder / wheel["filename"]
    # PyPI gives absolute URLs; a mirror may give them relative to the JSON document.
    with urllib.request.urlopen(urljoin(PYPI_PIP, wheel["url"]), timeout=120) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
        raise SystemExit(f"error: {wheel['filename']} does not match the SHA-256 PyPI publishes")
    path.write_bytes(data)
    return path


def make_venv() -> None:
    with_pip = has_ensurepip()
    print(f"Making the virtual environment {VENV}" + ("" if with_pip else
          " (no ensurepip here: pip comes from its wheel on PyPI)"), flush=True)
    venv.EnvBuilder(with_pip=with_pip, upgrade_deps=False, clear=True).create(VENV)
    if not with_pip:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                wheel = pip_wheel_from_pypi(Path(tmp))
            except (OSError, ValueError, KeyError, StopIteration) as exc:
                raise SystemExit(f"error: cannot fetch pip from PyPI ({exc}); install python3-venv "
                                 "(sudo apt install python3-venv) and run this again") from None
            # A wheel is importable: pip can install itself from its own wheel.
            run([str(bin_path("python")), f"{wheel}/pip", "install", "--quiet", str(wheel)])


def run(argv: list[str]) -> None:
    code = subprocess.call(argv, cwd=ROOT)
    if code:
        raise SystemExit(f"error: {' '.join(argv)} failed (exit status {code})")


def main(argv: list[str]) -> None:
    own = {a for a in argv if a in OWN_FLAGS}
    demo_args = [a for a in argv if a not in OWN_FLAGS]
    fresh = not bin_path("ciba-provider").exists()
    if not bin_path("pip").exists():  # none yet, or a run that stopped before pip was in
        make_venv()
    if fresh or "--reinstall" in own or "--app" in own:
        target = ".[app]" if "--app" in own else "."
        print(f"Installing {target} into {VENV} (a minute or two the first time)", flush=True)
        run([str(bin_path("python")), "-m", "pip", "install", "--quiet", target])
    if "--no-start" in own:
        print(f"Installed. Start the demo with: {bin_path('ciba-provider')} demo")
        return
    program = str(bin_path("ciba-provider"))
    os.execv(program, [program, "demo", *demo_args])


if __name__ == "__main__":
    main(sys.argv[1:])
