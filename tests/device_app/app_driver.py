"""Runs the real device app with a remote control for tests (never shipped with the app).

    python tests/device_app/app_driver.py --control-port P [ciba-device options]

starts ``device_app.main.create_app`` and, once the app runs, listens on 127.0.0.1:P for JSON
lines. Each command runs on the Kivy thread (Clock.schedule_once) and is answered with one JSON
line. Buttons are pressed with real touch events at their centre on the window, so a hidden,
covered or disabled button does not react, just as for a person.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from device_app.main import create_app  # noqa: E402


TIMELINE: dict[str, dict[str, float]] = {}  # binding message -> stage -> time.time()
GC_PAUSES: list[tuple[float, float, int]] = []  # (start, seconds, generation), the latest 500
CONNECTED: list[float] = []  # time.time() of each WebSocket (re)connection
SWAPS: list[float] = []  # seconds each frame's buffer swap took (software OpenGL renders there)


def trace_request_path() -> None:
    """Note when each login_request reaches the WebSocket thread and the UI thread, and every
    garbage-collector pass: the benchmark splits its latency by stage with these."""
    import gc

    from device_app.core.service import AppService
    from device_app.core.ws_listener import WebSocketListener

    def stage(message: dict, name: str) -> None:
        requests = [message.get("request")] if message.get("type") == "login_request" else \
            message.get("requests") or [] if message.get("type") == "sync" else []
        for request in requests:
            if isinstance(request, dict) and request.get("binding_message"):
                TIMELINE.setdefault(request["binding_message"], {}).setdefault(name, time.time())

    listener_init = WebSocketListener.__init__

    def init(self, client, on_message, on_state, *args, **kwargs) -> None:
        def received(message: dict) -> None:
            stage(message, "received")
            on_message(message)

        def state(name: str, detail: str = "") -> None:
            if name == "connected":
                CONNECTED.append(time.time())
            on_state(name, detail)
        listener_init(self, client, received, state, *args, **kwargs)

    handle = AppService._handle

    def handled(self, device_id: str, message: dict) -> None:
        stage(message, "handled")
        handle(self, device_id, message)
        stage(message, "built")

    WebSocketListener.__init__, AppService._handle = init, handled
    started = [0.0]

    def collected(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            GC_PAUSES.append((time.time(), time.perf_counter() - started[0], info["generation"]))
            del GC_PAUSES[:-500]

    gc.callbacks.append(collected)


def main() -> None:
    argv = sys.argv[1:]
    port = int(argv[argv.index("--control-port") + 1])
    del argv[argv.index("--control-port"):argv.index("--control-port") + 2]
    trace_request_path()
    for name in filter(None, os.environ.get("CIBA_TEST_WITHOUT_MODULES", "").split(",")):
        sys.modules[name] = None  # as on a platform without it (import raises ImportError)
    app = create_app(argv)

    from kivy.clock import Clock
    Clock.schedule_once(lambda _dt: Control(app, port).start(), 0.5)
    app.run()


class Control:
    # Commands that only read what the UI thread has noted: the benchmark polls them every few
    # milliseconds, and must not make the app draw extra frames while it measures.
    OFF_UI_THREAD = {"drawn", "timeline", "swaps", "cpu_seconds"}

    def __init__(self, app, port: int) -> None:
        self.app, self.port = app, port

    def start(self) -> None:
        from kivy.core.window import Window
        self.drawn: dict[str, float] = {}  # binding message -> time.time() of the first frame showing it
        swap = Window.flip

        def flip() -> None:  # after the buffers are swapped: the frame has left the app
            started = time.perf_counter()
            swap()
            SWAPS.append(time.perf_counter() - started)
            del SWAPS[:-5000]
            self._flipped()
        Window.flip = flip
        self.sounds: list[dict] = []  # each call of the app's sound hook
        play = self.app.chime.play

        def recorded_play() -> bool:
            played = play()
            self.sounds.append({"at": time.time(), "played": played})
            return played
        self.app.chime.play = recorded_play
        server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, args=(server,), daemon=True).start()

    def _flipped(self) -> None:
        """After each frame reaches the screen: note the cards it showed for the first time."""
        now = time.time()
        for card in self.app.view.ids.home.ids.request_list.children:
            if card.binding_message and card.binding_message not in self.drawn:
                self.drawn[card.binding_message] = now

    def cmd_drawn(self, binding_message: str) -> float | None:
        return self.drawn.get(binding_message)

    def cmd_cpu_seconds(self) -> float:
        """CPU time the app's process has used (all threads)."""
        return time.process_time()

    def cmd_swaps(self) -> list[float]:
        """How long each frame's buffer swap took (seconds), the latest 5000 frames."""
        return list(SWAPS)

    def cmd_timeline(self, binding_message: str) -> dict:
        """When the request reached the WebSocket thread, the UI thread, was built and drawn
        (time.time()), and the garbage-collector passes since it was received."""
        stages = dict(TIMELINE.get(binding_message, {}))
        if binding_message in self.drawn:
            stages["drawn"] = self.drawn[binding_message]
        since = stages.get("received", time.time())
        stages["gc"] = [(at, seconds, gen) for at, seconds, gen in GC_PAUSES if at >= since]
        stages["connected"] = CONNECTED[-1] if CONNECTED else None
        return stages

    def _serve(self, server: socket.socket) -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw") as stream:
            for line in stream:
                command = json.loads(line)
                if command["cmd"] in self.OFF_UI_THREAD:  # reads only: never wake the UI thread
                    answer = {"result": getattr(self, "cmd_" + command["cmd"])(**command.get("args", {}))}
                else:
                    answer = self._on_ui_thread(command)
                stream.write(json.dumps(answer) + "\n")
                stream.flush()

    def _on_ui_thread(self, command: dict) -> dict:
        from kivy.clock import Clock
        done = threading.Event()
        answer: dict = {}

        def run(_dt: float) -> None:
            try:
                answer["result"] = getattr(self, "cmd_" + command["cmd"])(**command.get("args", {}))
            except Exception as exc:
                answer["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            done.set()

        Clock.schedule_once(run, 0)
        if not done.wait(20):
            return {"error": "timeout on the UI thread"}
        return answer

    # finding widgets ---------------------------------------------------------------------
    def _roots(self):
        from kivy.core.window import Window
        return list(Window.children)  # the root view and any open popups (topmost first)

    def _find(self, wid: str, card: str | None = None):
        from device_app.ui.widgets import AccountRow, RequestCard
        for root in self._roots():
            for widget in root.walk(restrict=True):
                if card is not None:
                    if isinstance(widget, (RequestCard, AccountRow)) and card in (
                            getattr(widget, "request_id", None), getattr(widget, "device_id", None)):
                        return widget.ids[wid]
                elif wid in getattr(widget, "ids", {}):
                    return widget.ids[wid]
        raise LookupError(f"no widget with id {wid!r}" + (f" in {card}" if card else ""))

    # commands ----------------------------------------------------------------------------
    def cmd_cards(self) -> list[str]:
        """The binding messages on Home, top first (a light look that redraws nothing)."""
        return [c.binding_message for c in reversed(self.app.view.ids.home.ids.request_list.children)]

    def cmd_sounds(self) -> dict:
        """The calls of the app's sound hook, and the sound Kivy loaded (None: no audio output)."""
        sound = self.app.chime.sound
        return {"calls": self.sounds, "loaded": None if sound is None else {
            "source": sound.source, "length": sound.length, "state": sound.state}}

    def cmd_card_widgets(self) -> dict[str, int]:
        """Binding message -> the id() of the card widget showing it (reuse shows as equal ids)."""
        return {c.binding_message: id(c) for c in self.app.view.ids.home.ids.request_list.children}

    def cmd_card_ids(self) -> dict[str, str]:
        """Binding message -> the request id of its card on Home."""
        return {c.binding_message: c.request_id for c in self.app.view.ids.home.ids.request_list.children}

    def cmd_history_rows(self) -> list[str]:
        """The request ids History's rows show right now, without bringing it up to date."""
        return [r.request_id for r in reversed(self.app.view.ids.history.ids.history_list.children)]

    def cmd_gc(self) -> dict:
        import gc
        return {"frozen": gc.get_freeze_count(), "thresholds": list(gc.get_threshold())}

    def cmd_state(self) -> dict:
        """What the person sees; History, Code and Settings as they show when opened (the app
        brings them up to date then, or in idle time: device_app/ui/idle.py)."""
        for name in ("history", "code", "settings"):
            self.app.refresh_if_stale(name)
        ids = self.app.view.ids
        return {
            "screen": self.app.screens.current,
            "connection": self.app.view.connection,
            "welcome_status": ids.welcome.status,
            "enrolled": ids.welcome.enrolled,
            "banner": self.app.view.notice,
            "notice_action": self.app.view.notice_action,
            "offline": self.app.view.offline,
            "show_nav": self.app.view.show_nav,
            "request_bar": ids.request_bar.height > 0,
            "empty_text": ids.home.ids.empty_label.text if ids.home.empty else "",
            "popups": [type(w).__name__ for w in self._roots()[:-1]],
            "popup_text": [getattr(w, "message", "") or getattr(w, "body", "")
                           for w in self._roots()[:-1]],
            "cards": [{"request_id": c.request_id, "client_name": c.client_name,
                       "binding_message": c.binding_message, "scopes": c.scopes_text,
                       "details": c.details_text, "countdown": c.countdown_text, "busy": c.busy,
                       "account": c.account_text, "account_colour": list(c.account_colour),
                       "client_uri": c.client_uri, "logo": c.logo, "asked": c.asked_text,
                       "top": c.to_window(c.x, c.top)[1]}
                      for c in reversed(ids.home.ids.request_list.children)],
            "history": [{"request_id": r.request_id, "outcome": r.outcome, "reason": r.reason,
                         "account": r.account_text, "subtitle": r.subtitle}
                        for r in reversed(ids.history.ids.history_list.children)],
            "codes": [{"device_id": c.device_id, "code": c.code, "seconds": c.seconds_text}
                      for c in reversed(ids.code.ids.code_list.children)],
            "sound_setting": ids.settings.ids.sound_state.text,
            "accounts": [{"device_id": r.device_id, "title": r.title, "state": r.state_text,
                          "details": r.details}
                         for r in reversed(ids.settings.ids.account_list.children)],
        }

    def cmd_text(self, id: str, card: str | None = None) -> str:
        return self._find(id, card).text

    def cmd_scroll_to(self, id: str, card: str | None = None) -> str:
        """Scroll the list holding ``id`` (of one request ``card``) until it shows, as a person
        would with a finger."""
        from kivy.uix.scrollview import ScrollView
        widget = self._find(id, card)
        parent = widget.parent
        while parent is not None and not isinstance(parent, ScrollView):
            parent = parent.parent
        if parent is not None:
            parent.scroll_to(widget, padding=10, animate=False)
            parent.update_from_scroll()
        return "ok"

    @staticmethod
    def _visible(widget, x: float, y: float) -> bool:
        """Whether the window point (x, y) of ``widget`` is on screen and not scrolled away."""
        from kivy.core.window import Window
        from kivy.uix.scrollview import ScrollView
        if not (0 <= x < Window.width and 0 <= y < Window.height):
            return False
        parent = widget.parent
        while parent is not None and parent is not Window:
            if isinstance(parent, ScrollView):
                left, bottom = parent.to_window(parent.x, parent.y)
                if not (left <= x < left + parent.width and bottom <= y < bottom + parent.height):
                    return False
            parent = parent.parent
        return True

    def cmd_press(self, id: str, card: str | None = None) -> str:
        from kivy.tests.common import UnitTestTouch
        widget = self._find(id, card)
        if widget.disabled or widget.opacity == 0:
            raise RuntimeError(f"{id} is disabled or hidden")
        x, y = widget.to_window(*widget.center)
        if not self._visible(widget, x, y):
            raise RuntimeError(f"{id} is scrolled out of sight (scroll_to it first)")
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        return f"pressed {id} at {x:.0f},{y:.0f}"

    def cmd_press_history(self, index: int) -> str:
        """Tap the ``index``-th History row (newest first) at its centre."""
        from kivy.tests.common import UnitTestTouch
        row = list(reversed(self.app.view.ids.history.ids.history_list.children))[index]
        x, y = row.to_window(*row.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        return "ok"

    def cmd_set_text(self, id: str, text: str) -> str:
        self._find(id).text = text
        return "ok"

    def cmd_choose_file(self, path: str) -> str:
        """Type the path into the picker's path box, as a person pasting the printed path."""
        self._find("path_input").text = path
        return "ok"

    def cmd_key(self, key: int) -> bool:
        """A key press on the window (27: Escape / Android back)."""
        from kivy.core.window import Window
        return bool(Window.dispatch("on_keyboard", key, 0, None, []))

    def cmd_window_focus(self, focused: bool) -> str:
        """The window goes behind others (or comes back): what a window manager would tell."""
        self.app._on_focus(None, focused)
        return "ok"

    def cmd_pin_window_passed(self) -> str:
        """Five minutes pass since the PIN was entered (the next Accept asks for it again)."""
        self.app.service.lock._last_pin_at = None
        return "ok"

    def cmd_env(self, name: str) -> str:
        return os.environ.get(name, "")

    def cmd_screenshot(self, path: str) -> str:
        from kivy.core.window import Window
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = Window.screenshot(name=str(target.with_name(target.stem + "%(counter)04d.png")))
        os.replace(written, target)
        return str(target)

    def cmd_window(self) -> list:
        from kivy.core.window import Window
        return list(Window.size)

    def cmd_quit(self) -> str:
        self.app.stop()
        return "bye"


if __name__ == "__main__":
    main()
