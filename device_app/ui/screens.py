"""The screens: welcome (enroll), home (pending requests), history, code, settings, scan.

Layout is in the .kv file of each screen; these classes hold the few properties the layout
binds to and fill their lists from the core objects the app hands them.
"""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty, ColorProperty, StringProperty
from kivy.uix.screenmanager import Screen

from device_app.core.inbox import HistoryEntry, PendingRequest
from device_app.core.qr import available as qr_available
from device_app.core.store import Account

from . import theme
from .camera import camera_available
from .widgets import (AccountRow, CodeCard, FilePickerPopup, HistoryRow, PastePopup, RequestCard,
                      sync_children)


class WelcomeScreen(Screen):
    status = StringProperty("")
    status_colour = ColorProperty(theme.MUTED)
    enrolled = BooleanProperty(False)
    has_camera = BooleanProperty(False)
    can_read_images = BooleanProperty(True)  # QR images can be decoded (zxing-cpp is there)
    push = StringProperty("websocket")  # the push channel asked for at enrollment
    advanced = BooleanProperty(False)  # the "More options" (push channel) are shown
    has_accounts = BooleanProperty(False)  # adding another: Back and the nav bar are there
    offer_pin = BooleanProperty(False)  # after the first enrollment: "Protect with a PIN"

    def on_kv_post(self, base_widget) -> None:
        self.can_read_images = qr_available()
        self.has_camera = camera_available(getattr(App.get_running_app(), "camera_source", None))

    def set_status(self, text: str, colour=theme.MUTED, enrolled: bool = False) -> None:
        self.status, self.status_colour, self.enrolled = text, colour, enrolled
        self.offer_pin = False

    def open_file_chooser(self) -> None:
        FilePickerPopup(action=App.get_running_app().enroll_image).open()

    def open_paste(self) -> None:
        PastePopup(action=App.get_running_app().enroll_text).open()


class HomeScreen(Screen):
    empty = BooleanProperty(True)
    offline = BooleanProperty(False)

    # Cards ready for the next request: built ahead in idle time, or taken off Home when their
    # request ended. Building a card from its kv rules can take longer than a frame on a slow
    # machine; a new request should only fill one in.
    SPARE_CARDS = 3

    def __init__(self, **kwargs) -> None:
        self._spare: list[RequestCard] = []
        super().__init__(**kwargs)

    def keep_spare_card(self) -> None:
        if not self._spare:
            self._spare.append(RequestCard())

    def _new_card(self) -> RequestCard:
        return self._spare.pop() if self._spare else RequestCard()

    def _release(self, card: RequestCard) -> None:
        if len(self._spare) < self.SPARE_CARDS:
            self._spare.append(card)

    def show(self, items: list[PendingRequest], accounts: dict[str, Account]) -> None:
        self.empty = not items
        cards = sync_children(self.ids.request_list, [i.request_id for i in items],
                              lambda _key: self._new_card(), lambda card: card.request_id,
                              released=self._release)
        logos = App.get_running_app().logos
        for card, item in zip(cards, items):
            card.show(item, accounts.get(item.account_id), logos.cached(item.request.get("logo_uri")))

    def tick(self) -> None:
        for card in self.ids.request_list.children:
            card.tick()


class HistoryScreen(Screen):
    empty = BooleanProperty(True)

    def show(self, entries: list[HistoryEntry], accounts: dict[str, Account]) -> None:
        self.empty = not entries
        rows = sync_children(self.ids.history_list, [e.request_id for e in entries],
                             lambda _key: HistoryRow(), lambda row: row.request_id)
        for row, entry in zip(rows, entries):
            row.show(entry, accounts.get(entry.account_id))


class CodeScreen(Screen):
    empty = BooleanProperty(True)

    def show(self, accounts: list[Account]) -> None:
        self.empty = not accounts
        cards = sync_children(self.ids.code_list, [a.device_id for a in accounts],
                              lambda _key: CodeCard(), lambda card: card.device_id)
        for card, account in zip(cards, accounts):
            card.show(account)

    def tick(self) -> None:
        for card in self.ids.code_list.children:
            card.tick()


class SettingsScreen(Screen):
    data_dir = StringProperty("")
    locked = BooleanProperty(False)  # the app lock is on
    sound = BooleanProperty(True)  # a new request plays the app's sound while the window is behind

    def show(self, accounts: list[Account], states: dict[str, str]) -> None:
        rows = sync_children(self.ids.account_list, [a.device_id for a in accounts],
                             lambda _key: AccountRow(), lambda row: row.device_id)
        for row, account in zip(rows, accounts):
            row.show(account, states.get(account.device_id))
