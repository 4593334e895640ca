"""The person's settings file (device_app/core/prefs.py)."""

from __future__ import annotations

import json
import stat

import pytest

from device_app.core.prefs import Preferences


def test_sound_is_on_by_default_and_kept_private(data_dir):
    assert Preferences(data_dir).sound is True
    prefs = Preferences(data_dir)
    prefs.sound = False
    assert Preferences(data_dir).sound is False
    path = data_dir / "settings.json"
    assert json.loads(path.read_text()) == {"sound": False}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["{broken", "[]", '{"sound": "no"}', '{"sound": 0}'])
def test_an_unreadable_or_odd_file_means_the_defaults(data_dir, content):
    data_dir.mkdir(parents=True)
    (data_dir / "settings.json").write_text(content)
    assert Preferences(data_dir).sound is True


def test_unknown_settings_are_not_kept(data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "settings.json").write_text('{"sound": false, "theme": "dark"}')
    prefs = Preferences(data_dir)
    assert prefs.sound is False
    prefs.sound = True
    assert json.loads((data_dir / "settings.json").read_text()) == {"sound": True}
