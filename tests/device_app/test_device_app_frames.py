"""What keeps a new request's first frame short (bench/device_latency.py measures the time):
the real app under Xvfb against a real provider.

- A withdrawn card is reused for the next request (no card is built from its kv rules then).
- History is brought up to date when it is opened, and in idle time otherwise.
- Once idle, the app has frozen its start-up objects out of the garbage collector's sight.
- A change draws a frame or two, not half a second of them (no scroll-bar fade).
"""

from __future__ import annotations

import time

import pytest

from app_remote import card_for, enroll_from_qr_image
from conftest import wait_for

pytestmark = pytest.mark.slow


def test_a_new_request_reuses_a_withdrawn_card_and_history_is_current_when_opened(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    wait_for(lambda: app.call("gc")["frozen"] > 0)  # idle work has run since start

    first = provider.bc_authorize("REUSE ONE")
    shown = card_for(app.wait_state(lambda s: card_for(s, "REUSE ONE")), "REUSE ONE")
    card = app.call("card_widgets")["REUSE ONE"]
    provider.bc_cancel(first)
    wait_for(lambda: "REUSE ONE" not in app.call("cards"))
    second = provider.bc_authorize("REUSE TWO")
    wait_for(lambda: "REUSE TWO" in app.call("cards"))
    assert app.call("card_widgets")["REUSE TWO"] == card
    again = card_for(app.state(), "REUSE TWO")
    assert again["request_id"] != shown["request_id"] and again["scopes"] == shown["scopes"]

    provider.bc_cancel(second)
    wait_for(lambda: "REUSE TWO" not in app.call("cards"))
    app.press("nav_history")  # the first look after opening: both are there, newest first
    rows = app.call("history_rows")
    assert [r for r in rows if r in (shown["request_id"], again["request_id"])] == \
        [again["request_id"], shown["request_id"]]


def test_history_catches_up_in_idle_time(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    auth_req_id = provider.bc_authorize("IDLE HISTORY")
    request_id = wait_for(lambda: app.call("card_ids").get("IDLE HISTORY"))
    provider.bc_cancel(auth_req_id)
    wait_for(lambda: request_id in app.call("history_rows"))  # never opened


def test_a_change_draws_a_frame_or_two_not_an_animation(app, provider, tmp_path):
    enroll_from_qr_image(app, provider, tmp_path)
    auth_req_id = provider.bc_authorize("FEW FRAMES")
    app.wait_state(lambda s: card_for(s, "FEW FRAMES"))
    time.sleep(1.5)  # the card's own first frames, and its countdown's first tick
    before = len(app.call("swaps"))
    provider.bc_cancel(auth_req_id)
    wait_for(lambda: "FEW FRAMES" not in app.call("cards"))
    time.sleep(2.0)  # Kivy's scroll-bar fade would redraw the window ~30 times in this while
    frames = len(app.call("swaps")) - before
    assert 1 <= frames <= 6, frames
