"""Entry point: ``ciba-device`` or ``python -m device_app``.

Sets the phone-shaped window (400 x 720, resizable) before Kivy opens it, then runs the app.
"""

from __future__ import annotations

import argparse
import os
import sys

WIDTH, HEIGHT = 400, 720


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ciba-device", description="The CIBA authentication-device app.")
    parser.add_argument("--data-dir", default=os.environ.get("CIBA_DEVICE_HOME") or None,
                        help="where keys and accounts are kept (default: the app's user data directory; "
                             "env CIBA_DEVICE_HOME)")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", help="window size WIDTHxHEIGHT (default 400x720)")
    return parser.parse_args(argv)


def configure_kivy(size: str = f"{WIDTH}x{HEIGHT}") -> None:
    """Window settings; must run before kivy.core.window is imported."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.config import Config

    from device_app.ui.theme import icon_path

    width, height = (int(v) for v in size.lower().split("x"))
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "1")
    Config.set("graphics", "minimum_width", "320")
    Config.set("graphics", "minimum_height", "480")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "0")
    if icon_path():
        Config.set("kivy", "window_icon", icon_path())


def create_app(argv: list[str] | None = None):
    args = parse_args(argv)
    configure_kivy(args.size)
    from device_app.ui.app import CibaDeviceApp
    return CibaDeviceApp(data_dir=args.data_dir)


def main(argv: list[str] | None = None) -> int:
    create_app(sys.argv[1:] if argv is None else argv).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
