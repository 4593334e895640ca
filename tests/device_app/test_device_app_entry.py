"""The entry points: ``python -m device_app`` opens the app window under Xvfb, stays up, says
nothing alarming in the terminal (no CRITICAL, traceback or DEBUG line without xclip/xsel), and
quits on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_help_without_a_display():
    done = subprocess.run([sys.executable, "-m", "device_app", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "--data-dir" in done.stdout


def test_python_m_device_app_runs_under_xvfb(tmp_path):
    env = dict(os.environ, KIVY_HOME=str(tmp_path / "kivy-home"))
    env.pop("SDL_VIDEODRIVER", None)
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1024x900x24", sys.executable, "-m",
                             "device_app", "--data-dir", str(tmp_path / "data")],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "Start application main loop" not in (tmp_path / "app.log").read_text():
            assert proc.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.2)
        time.sleep(2)
        assert proc.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal quits
        proc.wait(30)
        text = (tmp_path / "app.log").read_text()
        assert "Traceback" not in text
        assert "CRITICAL" not in text and "Cutbuffer" not in text  # no xclip/xsel here: quiet
        assert "ALSA lib" not in text and "Unable to open mixer" not in text  # nor without audio
        assert "DEBUG" not in text
        assert "Leaving application in progress" in text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        log.close()
