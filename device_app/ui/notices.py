"""The notice bar (results, cancels, expiries; it floats, so nothing moves under the finger), and
for requests that arrive while the window is behind: the app's sound (ui/sound.py, unless
turned off in Settings) and a desktop notification. A mixin of CibaDeviceApp."""

from __future__ import annotations

import threading

from kivy.clock import Clock

from . import theme


class Notices:
    def show_notice(self, text: str, colour=theme.PRIMARY, action: str = "", on_action=None,
                    seconds: float = 8) -> None:
        view = self.view
        view.notice, view.notice_colour, view.notice_action = text, colour, action
        self._notice_action = on_action
        Clock.unschedule(self._clear_notice)
        Clock.schedule_once(self._clear_notice, seconds)

    def _clear_notice(self, *_args) -> None:
        self.view.notice, self.view.notice_action, self._notice_action = "", "", None

    def notice_pressed(self, action: bool) -> None:
        callback = self._notice_action if action else None
        self._clear_notice()
        if callback:
            callback()

    def _on_notice(self, kind: str, text: str) -> None:
        if kind == "arrived":
            item = self.service.inbox.get(text)
            if item is not None:
                self._announce(item)
            return
        if kind in ("cancelled", "expired") or text:
            self.show_notice(text, theme.OUTCOME_COLOURS.get(kind, theme.MUTED))
        for request_id in [r for r in self._notifications
                           if self.service.inbox.get(r) is None]:
            self._withdraw(request_id)

    def _announce(self, item) -> None:
        """A new request while the window is not in front: the app's sound and a desktop
        notification (which brings the theme's sound only when the app could not play its own)."""
        if self.in_front:
            return
        wanted = self.prefs.sound
        played = wanted and self.chime.play()
        account = self.service.store.get(item.account_id)
        body = f"Check that it shows: {item.binding_message}" if item.binding_message else \
            "Open the app to answer."
        if account is not None:
            body += f"\nFor {theme.account_chip(account)}"
        request_id = item.request_id

        def send() -> None:
            nid = self.notifier.notify(f"Sign-in request from {item.client_name}", body,
                                       sound=wanted and not played)
            if nid:
                Clock.schedule_once(lambda _dt: self._notifications.__setitem__(request_id, nid))

        threading.Thread(target=send, daemon=True).start()

    def set_sound(self, on: bool) -> None:
        """Settings → Sound for new requests."""
        self.prefs.sound = on
        self.view.ids.settings.sound = on
        if on:
            self.chime.prepare()

    def _withdraw(self, request_id: str) -> None:
        nid = self._notifications.pop(request_id, None)
        if nid:
            threading.Thread(target=self.notifier.close, args=(nid,), daemon=True).start()

    def _fetch_logo(self, url: str | None) -> None:
        if not url or self.logos.cached(url):
            return

        def fetched(path) -> None:
            if path:
                self.refresh()
        from device_app.core.service import in_background
        in_background(lambda: self.logos.fetch(url), fetched, lambda _exc: None, self._dispatch)

