"""Entry point: ``ciba-device`` or ``python -m device_app``.

Sets the phone-shaped window (400 x 720, resizable) before Kivy opens it, then runs the app.
The terminal gets INFO lines (``--verbose``: DEBUG), no tracebacks for optional parts that are
missing (the X11 cut buffer needs xclip or xsel; the app works without), and Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys

WIDTH, HEIGHT = 400, 720


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ciba-device", description="The CIBA authentication-device app.")
    parser.add_argument("--data-dir", default=os.environ.get("CIBA_DEVICE_HOME") or None,
                        help="where keys and accounts are kept (default: the app's user data directory; "
                             "env CIBA_DEVICE_HOME)")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", help="window size WIDTHxHEIGHT (default 400x720)")
    parser.add_argument("--camera", default=os.environ.get("CIBA_DEVICE_CAMERA") or None,
                        metavar="SOURCE", help="camera for Scan QR code: an index (0) or a video "
                                               "file (needs the camera extra: OpenCV)")
    parser.add_argument("--verbose", action="store_true", help="log DEBUG lines too")
    return parser.parse_args(argv)


class _OptionalParts(logging.Filter):
    """Drops Kivy's CRITICAL reports about optional parts this machine lacks: no X11 cut buffer
    tool (middle-click paste needs xclip or xsel; copy and paste work without them), and no
    audio output (ui/sound.py says so in one INFO line)."""

    QUIET = ("Cutbuffer: Unable to find any valuable", "AudioSDL2: Unable to open mixer",
             "AudioSDL2: Unable to load")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.QUIET)


def configure_logging(verbose: bool = False) -> None:
    """Python logging for Kivy and the app, before Kivy is imported (KIVY_LOG_MODE=PYTHON)."""
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname)-7s] %(message)s"))
    handler.addFilter(_OptionalParts())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "websocket", "PIL"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not (shutil.which("xclip") or shutil.which("xsel")):
        logging.getLogger("device_app").info("No xclip or xsel: middle-click paste is off "
                                             "(copy and paste still work)")


def quit_on_signals(app) -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the app cleanly from Kivy's loop."""
    def stop(_signum, _frame) -> None:
        from kivy.clock import Clock
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def configure_kivy(size: str = f"{WIDTH}x{HEIGHT}") -> None:
    """Window settings; must run before kivy.clock and kivy.core.window are imported.

    The clock is Kivy's "interrupt" clock: a callback that a worker thread schedules (a request
    that has just arrived) wakes the loop at once, instead of waiting for the next 1/60 s tick,
    and the frame that shows it is drawn straight away. Idle, it sleeps as the default clock
    does. ``KIVY_CLOCK`` in the environment overrides it.
    """
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_CLOCK", "interrupt")
    from kivy.config import Config

    from device_app.ui.theme import icon_path

    width, height = (int(v) for v in size.lower().split("x"))
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "1")
    Config.set("graphics", "minimum_width", "320")
    Config.set("graphics", "minimum_height", "480")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # No multisampling: with software OpenGL (llvmpipe, as under Xvfb) 2x MSAA tripled the cost
    # of every frame (24 -> 8 ms a swap, bench/device_latency.py); the rounded shapes are drawn
    # with Kivy's Smooth* instructions, which antialias their own edges.
    Config.set("graphics", "multisamples", "0")
    Config.set("kivy", "exit_on_escape", "0")
    if icon_path():
        Config.set("kivy", "window_icon", icon_path())


def create_app(argv: list[str] | None = None):
    args = parse_args(argv)
    configure_logging(args.verbose)
    configure_kivy(args.size)
    from device_app.ui.app import CibaDeviceApp
    return CibaDeviceApp(data_dir=args.data_dir, camera=args.camera)


def main(argv: list[str] | None = None) -> int:
    app = create_app(sys.argv[1:] if argv is None else argv)
    quit_on_signals(app)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
