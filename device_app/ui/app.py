"""CibaDeviceApp: the Kivy application. It wires the screens to a DeviceService.

The service does the work on worker threads; its results come back here through
Clock.schedule_once (``_dispatch``) so that every widget is touched on the UI thread only.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.clipboard import Clipboard
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from device_app.core.api import DecisionResult, ProviderError
from device_app.core.enrollment import EnrollmentLinkError
from device_app.core.qr import NoQRCode
from device_app.core.service import DeviceService
from device_app.core.store import Account

from . import theme
from .camera import ScanScreen  # noqa: F401  (registers the class for app.kv)
from .screens import CodeScreen, HistoryScreen, HomeScreen, SettingsScreen, WelcomeScreen  # noqa: F401
from .widgets import ConfirmPopup

log = logging.getLogger(__name__)

KV_FILES = ("widgets.kv", "welcome.kv", "home.kv", "history.kv", "code.kv", "settings.kv", "scan.kv", "app.kv")
NAV_SCREENS = {"home", "history", "code", "settings"}


class RootView(BoxLayout):
    title = StringProperty("CIBA Authenticator")
    connection = StringProperty("")
    show_nav = BooleanProperty(True)
    pending_count = NumericProperty(0)

    def on_screen(self, name: str) -> None:
        self.show_nav = name in NAV_SCREENS
        button = self.ids.get(f"nav_{name}")
        if button is not None:
            button.state = "down"


class CibaDeviceApp(App):
    title = "CIBA Authenticator"

    def __init__(self, data_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._data_dir = data_dir

    # lifecycle ---------------------------------------------------------------------------
    def build(self) -> RootView:
        self.icon = theme.icon_path()
        here = Path(__file__).parent
        for name in KV_FILES:
            Builder.load_file(str(here / name))
        self.data_dir = Path(self._data_dir or self.user_data_dir)
        self.service = DeviceService(self.data_dir, dispatch=self._dispatch, on_change=self.refresh)
        self.view = RootView()
        self.screens = self.view.ids.screens
        self.view.ids.settings.data_dir = str(self.data_dir)
        return self.view

    def on_start(self) -> None:
        self.service.start()
        self.show("home" if self.service.accounts() else "welcome")
        self.refresh()
        Clock.schedule_interval(self._tick, 1)

    def on_stop(self) -> None:
        self.service.stop()

    def _dispatch(self, fn) -> None:
        Clock.schedule_once(lambda _dt: fn(), 0)

    def _tick(self, _dt: float) -> None:
        self.service.tick()
        if self.screens.current == "home":
            self.view.ids.home.tick()
        elif self.screens.current == "code":
            self.view.ids.code.tick()

    # navigation and refresh --------------------------------------------------------------
    def show(self, name: str) -> None:
        self.screens.current = name
        self.view.on_screen(name)

    def refresh(self) -> None:
        accounts = self.service.accounts()
        labels = {a.device_id: a.label for a in accounts} if len(accounts) > 1 else {}
        pending = self.service.inbox.pending()
        ids = self.view.ids
        ids.home.show(pending, labels)
        ids.history.show(self.service.inbox.history())
        ids.code.show(accounts)
        ids.settings.show(accounts, self.service.states)
        self.view.pending_count = len(pending)
        self.view.connection = self._connection_summary(accounts)

    def _connection_summary(self, accounts: list[Account]) -> str:
        if not accounts:
            return "Not enrolled"
        states = [self.service.states.get(a.device_id) for a in accounts]
        if all(s == "connected" for s in states):
            return "• Connected"
        worst = next((s for s in states if s != "connected"), None)
        return "• " + theme.state_words(worst)

    # enrollment --------------------------------------------------------------------------
    def enroll_text(self, text: str) -> None:
        self._enrolling()
        self.service.enroll_text(text, self._enrolled, self._enroll_failed, push=self.view.ids.welcome.push)

    def enroll_image(self, path: str) -> None:
        self._enrolling()
        self.service.enroll_image(path, self._enrolled, self._enroll_failed, push=self.view.ids.welcome.push)

    def _enrolling(self) -> None:
        self.show("welcome")
        self.view.ids.welcome.set_status("Enrolling…")

    def _enrolled(self, account: Account) -> None:
        self.view.ids.welcome.set_status(
            f"This device now serves {account.name or account.username} ({account.username}) "
            f"at {account.provider_label}.", theme.ACCEPT, enrolled=True)

    def _enroll_failed(self, exc: Exception) -> None:
        if isinstance(exc, (EnrollmentLinkError, NoQRCode)):
            message = str(exc)
        elif isinstance(exc, ProviderError):
            message = {
                "invalid_code": "The enrollment code is unknown, expired or already used. Ask for a new one.",
                "too_many_requests": "Too many attempts. Wait a moment and try again.",
                "network_error": "Cannot reach the provider. Check the connection.",
                "temporarily_unavailable": "The provider cannot set up notifications right now. "
                                           "Try again later.",
            }.get(exc.error, f"The provider refused: {exc.description or exc.error}.")
        else:
            log.warning("Enrollment failed: %s", type(exc).__name__)
            message = "Enrollment failed."
        self.view.ids.welcome.set_status(message, theme.DENY)

    # decisions and accounts --------------------------------------------------------------
    def decide(self, request_id: str, accept: bool) -> None:
        item = self.service.inbox.get(request_id)
        if item is None:
            return
        name = item.client_name
        self.service.decide(request_id, accept, lambda result: self._decided(name, result))

    def _decided(self, client_name: str, result: DecisionResult) -> None:
        text = f"{theme.OUTCOME_WORDS[result.outcome]}: {client_name}"
        if result.reason:
            text += f"\n{result.reason}"
        self.view.ids.home.set_banner(text, theme.OUTCOME_COLOURS[result.outcome])

    def confirm_remove(self, device_id: str) -> None:
        account = self.service.store.get(device_id)
        if account is None:
            return
        ConfirmPopup(message=f"Remove {account.label} from this device? Its key is deleted; "
                             "you will need a new enrollment code to add it again.",
                     confirm_text="Remove",
                     action=lambda: self.remove_account(device_id)).open()

    def remove_account(self, device_id: str) -> None:
        self.service.remove_account(device_id)
        if not self.service.accounts():
            self.view.ids.welcome.set_status("")
            self.show("welcome")

    # helpers for the layout --------------------------------------------------------------
    def default_folder(self) -> str:
        for folder in (Path.home() / "Downloads", Path.home() / "Pictures", Path.home()):
            if folder.is_dir():
                return str(folder)
        return str(Path.cwd())

    def clipboard_text(self) -> str:
        try:
            return Clipboard.paste() or ""
        except Exception:
            return ""
