"""The repeated pieces of the screens: request cards, history rows, code cards, account rows,
the notice bar, and the popups (light, like the screens). Each is filled from a core object by
``show(...)``; layout lives in widgets.kv.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from kivy.app import App
from kivy.properties import (BooleanProperty, ColorProperty, ListProperty, NumericProperty,
                             ObjectProperty, StringProperty)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
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


class Chip(Label):
    """A small coloured label: the account a request or entry belongs to."""

    chip_colour = ColorProperty(theme.MUTED)


class Snackbar(BoxLayout):
    """The notice floating above the nav bar; a tap on it never reaches what lies beneath."""

    def on_touch_down(self, touch):
        if self.opacity and self.collide_point(*touch.pos):
            if not super().on_touch_down(touch):  # a tap beside the action dismisses it
                App.get_running_app().notice_pressed(False)
            return True
        return False


class RequestCard(Card):
    request_id = StringProperty("")
    client_name = StringProperty("")
    client_uri = StringProperty("")
    logo = StringProperty("")  # a local PNG (core.logos) or "" to show the name alone
    asked_text = StringProperty("")
    binding_message = StringProperty("")
    scopes_text = StringProperty("")
    details_text = StringProperty("")
    account_text = StringProperty("")
    account_colour = ColorProperty(theme.MUTED)
    countdown_text = StringProperty("")
    progress = NumericProperty(1.0)
    busy = BooleanProperty(False)

    def show(self, item: PendingRequest, account: Account | None, logo: str | None = None) -> "RequestCard":
        request = item.request
        self.request_id = item.request_id
        self.client_name = item.client_name
        self.client_uri = str(request.get("client_uri") or "")
        self.logo = logo or ""
        self.asked_text = "Asked " + theme.when(item.created_at)
        self.binding_message = item.binding_message or ""
        self.scopes_text = "\n".join(f"•  {line}" for line in scope_lines(request.get("scopes"))) or "•  Sign you in"
        self.details_text = "\n".join(details_lines(request.get("authorization_details")))
        self.account_text = theme.account_chip(account)
        self.account_colour = theme.account_colour(account)
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


class HistoryRow(ButtonBehavior, Card):
    """One past request; tap it for the details (and "I didn't request this")."""

    request_id = StringProperty("")
    outcome = StringProperty("")
    outcome_text = StringProperty("")
    outcome_colour = ColorProperty(theme.MUTED)
    title = StringProperty("")
    subtitle = StringProperty("")
    reason = StringProperty("")
    account_text = StringProperty("")
    account_colour = ColorProperty(theme.MUTED)

    def show(self, entry: HistoryEntry, account: Account | None) -> "HistoryRow":
        self.request_id = entry.request_id
        self.outcome = entry.outcome
        self.outcome_text = theme.OUTCOME_WORDS[entry.outcome] + ("" if entry.final else "?")
        self.outcome_colour = theme.OUTCOME_COLOURS[entry.outcome]
        self.title = str(entry.request.get("client_name") or "An application")
        message = entry.request.get("binding_message")
        when = theme.when(entry.at)
        self.subtitle = f"{message}  ·  {when}" if message else when
        self.reason = entry.reason + ("  (reported)" if entry.reported else "")
        self.account_text = theme.account_chip(account)
        self.account_colour = theme.account_colour(account)
        return self

    def on_release(self) -> None:
        App.get_running_app().open_history(self.request_id)


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
    account_text = StringProperty("")
    account_colour = ColorProperty(theme.MUTED)

    def show(self, account: Account, state: str | None) -> "AccountRow":
        self.device_id = account.device_id
        self.title = f"{account.name or account.username} ({account.username})"
        push = "this app's own connection" if account.push == "websocket" else "a Gotify server"
        self.details = (f"Provider: {account.issuer}\nThis device: {account.display_name or '—'}\n"
                        f"Requests arrive through {push}")
        self.state_text = theme.state_words(state)
        self.state_colour = theme.state_colour(state)
        self.account_text = theme.account_chip(account)
        self.account_colour = theme.account_colour(account)
        return self


class FileEntry(ButtonBehavior, BoxLayout):
    """A folder or image in the file picker."""

    path = StringProperty("")
    label = StringProperty("")
    is_dir = BooleanProperty(False)
    selected = BooleanProperty(False)
    picker = ObjectProperty(None)

    def on_release(self) -> None:
        self.picker.pick(self.path, self.is_dir)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class FilePickerPopup(Popup):
    """Open the enrollment QR image: type or paste a path, or walk the folders (light theme)."""

    action = ObjectProperty(None)  # called with the chosen file
    folder = StringProperty("")
    selection = StringProperty("")
    error = StringProperty("")

    def open(self, *args, **kwargs) -> None:
        self.go(App.get_running_app().default_folder())  # listed before it shows, not after
        super().open(*args, **kwargs)

    def go(self, folder: str) -> None:
        path = Path(os.path.expanduser(folder or "/"))
        try:
            children = sorted(path.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))
        except OSError as exc:
            self.error = f"Cannot open {path}: {exc.strerror or type(exc).__name__}"
            return
        self.folder, self.selection, self.error = str(path), "", ""
        self.ids.path_input.text = str(path)
        shown = [p for p in children if not p.name.startswith(".")
                 and (p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES)]
        listing = self.ids.file_list
        listing.clear_widgets()
        if path.parent != path:
            listing.add_widget(FileEntry(path=str(path.parent), label="..  (up)", is_dir=True,
                                         picker=self))
        for child in shown[:300]:
            label = (child.name + "/") if child.is_dir() else child.name
            listing.add_widget(FileEntry(path=str(child), label=label, is_dir=child.is_dir(),
                                         picker=self))
        if not shown:
            self.error = "No images here. Type the path of the QR image above."

    def pick(self, path: str, is_dir: bool) -> None:
        if is_dir:
            self.go(path)
            return
        self.selection = path
        self.ids.path_input.text = path
        for entry in self.ids.file_list.children:
            entry.selected = entry.path == path

    def typed(self, text: str) -> None:
        """Enter in the path box: a folder opens, a file is chosen."""
        path = Path(os.path.expanduser(text.strip()))
        if path.is_dir():
            self.go(str(path))
        elif path.is_file():
            self.choose(str(path))
        else:
            self.error = f"There is no file or folder {path}."

    def choose(self, path: str) -> None:
        path = path.strip()
        if not path:
            return
        if Path(path).is_dir():
            self.go(path)
            return
        if not Path(path).is_file():
            self.error = f"There is no file {path}."
            return
        App.get_running_app().remember_folder(str(Path(path).parent))
        self.dismiss()
        self.action(path)


class PastePopup(Popup):
    action = ObjectProperty(None)  # called with the pasted text

    def submit(self, text: str) -> None:
        text = "".join(text.split())  # a link wrapped over lines, or with stray spaces
        if text:
            self.dismiss()
            self.action(text)


class ConfirmPopup(Popup):
    message = StringProperty("")
    confirm_text = StringProperty("OK")
    action = ObjectProperty(None)  # called when confirmed

    def confirm(self) -> None:
        self.dismiss()
        self.action()


class PinPopup(Popup):
    """Asks for the PIN; ``action(pin)`` returns an error to show, or "" when done."""

    message = StringProperty("")
    error = StringProperty("")
    action = ObjectProperty(None)
    forgot = ObjectProperty(None, allownone=True)  # "Forgot PIN?" (only where it makes sense)

    def submit(self, pin: str) -> None:
        error = self.action(pin.strip())
        self.ids.pin_input.text = ""
        if error:
            self.error = error
        else:
            self.dismiss()


class MessagePopup(Popup):
    message = StringProperty("")


class HistoryDetailPopup(Popup):
    """Everything about one past request, and "I didn't request this" when it makes sense."""

    entry = ObjectProperty(None)
    account = ObjectProperty(None, allownone=True)
    body = StringProperty("")
    can_report = BooleanProperty(False)

    def on_pre_open(self) -> None:
        entry, request = self.entry, self.entry.request
        self.title = str(request.get("client_name") or "An application")
        lines = [f"[b]{theme.OUTCOME_WORDS[entry.outcome]}[/b]"
                 + ("" if entry.final else " (not sent)") + f" — {theme.when(entry.at)}"]
        if entry.reason:
            lines.append(entry.reason)
        lines.append(f"Account: {theme.account_chip(self.account)}")
        if request.get("client_uri"):
            lines.append(f"Application: {request['client_uri']}")
        lines.append(f"Asked: {theme.when(request.get('created_at'))}")
        lines.append(f"Binding message: {request.get('binding_message') or '(none)'}")
        scopes = scope_lines(request.get("scopes"))
        if scopes:
            lines.append("It asked for: " + ", ".join(scopes))
        lines += details_lines(request.get("authorization_details"))
        if entry.reported:
            lines.append("You reported that you did not request this.")
        self.body = "\n".join(lines)
        self.can_report = (entry.outcome in ("denied", "expired", "cancelled") and not entry.reported
                           and self.account is not None)

    def report(self) -> None:
        self.dismiss()
        App.get_running_app().report(self.entry.request_id)


def sync_children(container, keys: list[str], make: Callable[[str], object], key_of: Callable[[object], str],
                  released: Callable[[object], None] | None = None):
    """Make ``container``'s children match ``keys`` in order, reusing widgets with the same key.

    Returns the widgets in order so the caller can fill them. Removing entries, or adding new
    ones at the top (a new request, a new history entry), touches only those widgets: a list of
    200 rows is not rebuilt for one change (that cost lands on the next request's first frame).
    Widgets taken out are handed to ``released`` (to be reused for another key).
    """
    wanted = set(keys)
    gone = [c for c in container.children if key_of(c) not in wanted]
    for child in gone:
        container.remove_widget(child)
        if released is not None:
            released(child)
    existing = {key_of(child): child for child in container.children}
    ordered = [existing.get(key) or make(key) for key in keys]
    shown = [key_of(c) for c in reversed(container.children)]
    if shown == keys:
        return ordered
    kept = [k for k in shown if k in wanted]
    new = len(keys) - len(kept)
    if keys[new:] == kept:  # only new ones, on top (children are bottom first in Kivy)
        for widget in reversed(ordered[:new]):
            container.add_widget(widget, index=len(container.children))
    else:
        container.clear_widgets()
        for widget in ordered:
            container.add_widget(widget)
    return ordered
