"""The repeated pieces of the screens: request cards, history rows, code cards, account rows,
and the popups. Each is filled from a core object by ``show(...)``; layout lives in widgets.kv.
"""

from __future__ import annotations

import time
from typing import Callable

from kivy.properties import (BooleanProperty, ColorProperty, NumericProperty, ObjectProperty,
                             StringProperty)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.popup import Popup

from device_app.core.describe import details_lines, scope_lines
from device_app.core.inbox import HistoryEntry, PendingRequest
from device_app.core.store import Account
from device_app.core.totp import current_code

from . import theme


class RoundedButton(Button):
    fill = ColorProperty(theme.PRIMARY)  # the button's colour (drawn as a rounded rectangle)


class Card(BoxLayout):
    """A white rounded panel that grows with its content (the look is in widgets.kv)."""


class RequestCard(Card):
    request_id = StringProperty("")
    client_name = StringProperty("")
    binding_message = StringProperty("")
    scopes_text = StringProperty("")
    details_text = StringProperty("")
    account_text = StringProperty("")
    countdown_text = StringProperty("")
    progress = NumericProperty(1.0)
    busy = BooleanProperty(False)

    def show(self, item: PendingRequest, account_label: str) -> "RequestCard":
        request = item.request
        self.request_id = item.request_id
        self.client_name = item.client_name
        self.binding_message = item.binding_message or ""
        self.scopes_text = "\n".join(f"•  {line}" for line in scope_lines(request.get("scopes"))) or "•  Sign you in"
        self.details_text = "\n".join(details_lines(request.get("authorization_details")))
        self.account_text = account_label
        self.busy = item.busy
        self._item = item
        return self.tick()

    def tick(self, now: float | None = None) -> "RequestCard":
        item = self._item
        left = item.seconds_left(now)
        self.countdown_text = "Sending your answer…" if item.busy else theme.countdown(left)
        if left is not None and item.expires_at:
            total = max(1.0, item.expires_at - item.created_at)
            self.progress = max(0.0, min(1.0, left / total))
        return self


class HistoryRow(Card):
    request_id = StringProperty("")
    outcome = StringProperty("")
    outcome_text = StringProperty("")
    outcome_colour = ColorProperty(theme.MUTED)
    title = StringProperty("")
    subtitle = StringProperty("")
    reason = StringProperty("")

    def show(self, entry: HistoryEntry) -> "HistoryRow":
        self.request_id = entry.request_id
        self.outcome = entry.outcome
        self.outcome_text = theme.OUTCOME_WORDS[entry.outcome]
        self.outcome_colour = theme.OUTCOME_COLOURS[entry.outcome]
        self.title = str(entry.request.get("client_name") or "An application")
        message = entry.request.get("binding_message")
        when = time.strftime("%H:%M:%S", time.localtime(entry.at))
        self.subtitle = f"{message}  ·  {when}" if message else when
        self.reason = entry.reason
        return self


class CodeCard(Card):
    device_id = StringProperty("")
    account_text = StringProperty("")
    code = StringProperty("")
    seconds_text = StringProperty("")
    progress = NumericProperty(1.0)

    def show(self, account: Account) -> "CodeCard":
        self.device_id = account.device_id
        self.account_text = account.label
        self._totp = account.totp
        return self.tick()

    def tick(self, now: float | None = None) -> "CodeCard":
        if not self._totp.get("secret"):
            self.code, self.seconds_text = "——", "No user code for this account"
            return self
        code = current_code(self._totp, now)
        half = len(code.code) // 2
        self.code = f"{code.code[:half]} {code.code[half:]}"
        self.seconds_text = f"Changes in {code.seconds_left} s"
        self.progress = code.seconds_left / code.period
        return self


class AccountRow(Card):
    device_id = StringProperty("")
    title = StringProperty("")
    details = StringProperty("")
    state_text = StringProperty("")
    state_colour = ColorProperty(theme.MUTED)

    def show(self, account: Account, state: str | None) -> "AccountRow":
        self.device_id = account.device_id
        self.title = f"{account.name or account.username} ({account.username})"
        self.details = (f"Provider: {account.issuer}\nThis device: {account.display_name or '—'}\n"
                        f"Push channel: {account.push}")
        self.state_text = theme.state_words(state)
        self.state_colour = theme.state_colour(state)
        return self


class FileChooserPopup(Popup):
    action = ObjectProperty(None)  # called with the chosen path

    def choose(self, selection: list[str]) -> None:
        if selection:
            self.dismiss()
            self.action(selection[0])


class PastePopup(Popup):
    action = ObjectProperty(None)  # called with the pasted text

    def submit(self, text: str) -> None:
        if text.strip():
            self.dismiss()
            self.action(text.strip())


class ConfirmPopup(Popup):
    message = StringProperty("")
    confirm_text = StringProperty("OK")
    action = ObjectProperty(None)  # called when confirmed

    def confirm(self) -> None:
        self.dismiss()
        self.action()


def sync_children(container, keys: list[str], make: Callable[[str], object], key_of: Callable[[object], str]):
    """Make ``container``'s children match ``keys`` in order, reusing widgets with the same key.

    Returns the widgets in order so the caller can fill them.
    """
    existing = {key_of(child): child for child in container.children}
    ordered = [existing.get(key) or make(key) for key in keys]
    if [key_of(c) for c in reversed(container.children)] != keys:
        container.clear_widgets()
        for widget in ordered:
            container.add_widget(widget)
    return ordered
