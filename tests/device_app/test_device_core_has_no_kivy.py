"""DESIGN.md: device_app/core has no Kivy imports (it runs and is tested without a display)."""

import pkgutil
import subprocess
import sys

import device_app.core


def test_core_imports_without_kivy():
    modules = [f"device_app.core.{m.name}" for m in pkgutil.iter_modules(device_app.core.__path__)]
    code = ("import importlib, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'kivy'], 'kivy imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
