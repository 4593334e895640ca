"""CibaDeviceApp: the Kivy application. It wires the screens to an AppService.

The service does the work on worker threads; its results come back here through
Clock.schedule_once (``_dispatch``) so that every widget is touched on the UI thread only.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.utils import platform

from device_app.core.api import DecisionResult, ProviderError
from device_app.core.enrollment import EnrollmentLinkError
from device_app.core.logos import LogoCache
from device_app.core.notifications import DesktopNotifier
from device_app.core.prefs import Preferences
from device_app.core.qr import NoQRCode
from device_app.core.service import AppService
from device_app.core.store import Account

from . import theme
from .camera import ScanScreen  # noqa: F401  (registers the class for app.kv)
from .screens import CodeScreen, HistoryScreen, HomeScreen, SettingsScreen, WelcomeScreen  # noqa: F401
from .idle import IdleWork
from .lock_flow import LockFlows
from .notices import Notices
from .sound import Chime
from .widgets import ConfirmPopup, HistoryDetailPopup, MessagePopup, PinPopup

log = logging.getLogger(__name__)

KV_FILES = ("widgets.kv", "welcome.kv", "home.kv", "history.kv", "code.kv", "settings.kv", "scan.kv", "app.kv")
NAV_SCREENS = {"home", "history", "code", "settings"}


class RootView(FloatLayout):
    title = StringProperty("CIBA Authenticator")
    connection = StringProperty("")
    show_nav = BooleanProperty(True)
    has_accounts = BooleanProperty(False)
    pending_count = NumericProperty(0)
    screen = StringProperty("")
    offline = BooleanProperty(False)  # an account cannot receive requests right now
    # The notice (snackbar): floats above the nav bar, so nothing moves under the finger.
    notice = StringProperty("")
    notice_colour = ColorProperty(theme.PRIMARY)
    notice_action = StringProperty("")  # the words of its one button, "" for none

    def screen_changed(self, name: str) -> None:
        self.screen = name
        self.show_nav = name in NAV_SCREENS or (name == "welcome" and self.has_accounts)
        button = self.ids.get(f"nav_{name}")
        if button is not None:
            button.state = "down"


class CibaDeviceApp(Notices, LockFlows, IdleWork, App):
    title = "CIBA Authenticator"

    def __init__(self, data_dir: str | Path | None = None, camera: str | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._data_dir = data_dir
        self.camera_source = camera
        self.in_front = True  # the window has the focus (else requests also notify the desktop)
        self._notice_action = None
        self._notifications: dict[str, int] = {}  # request_id -> desktop notification id

    # lifecycle ---------------------------------------------------------------------------
    def build(self) -> RootView:
        self.icon = theme.icon_path()
        here = Path(__file__).parent
        for name in KV_FILES:
            Builder.load_file(str(here / name))
        self.data_dir = Path(self._data_dir or self.user_data_dir)
        self.service = AppService(self.data_dir, dispatch=self._dispatch, on_change=self.refresh,
                                     on_notice=self._on_notice)
        self.logos = LogoCache(self.data_dir)
        self.notifier = DesktopNotifier()
        self.prefs = Preferences(self.data_dir)
        self.chime = Chime()
        self.view = RootView()
        self.screens = self.view.ids.screens
        self.view.ids.settings.data_dir = str(self.data_dir)
        self.view.ids.settings.sound = self.prefs.sound
        self.start_idle_work()
        return self.view

    def on_start(self) -> None:
        self.service.start()
        self.notifier.request_permission(platform)
        self.show("home" if self.service.accounts() else "welcome")
        self.refresh()
        if not self.service.lock.unlocked:
            Clock.schedule_once(lambda _dt: self.ask_unlock(), 0)
        Clock.schedule_interval(self._tick, 1)
        Window.bind(on_keyboard=self._on_key, focus=self._on_focus)
        Window.bind(on_minimize=lambda *_: self._on_focus(Window, False),
                    on_restore=lambda *_: self._on_focus(Window, True))

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

    def _on_focus(self, _window, focused: bool) -> None:
        self.in_front = bool(focused)

    def _on_key(self, _window, key: int, *_args) -> bool:
        """Escape (and Android's back button, also 27) goes back; it never quits the app."""
        if key != 27:
            return False
        self.back()
        return True

    def back(self) -> None:
        popups = [w for w in Window.children if hasattr(w, "dismiss")]
        if popups:
            popups[0].dismiss()
        elif self.screens.current == "scan":
            self.show("welcome")
        elif self.screens.current != "home" and self.service.accounts():
            self.show("home")

    # navigation and refresh --------------------------------------------------------------
    def show(self, name: str) -> None:
        self.refresh_if_stale(name)
        self.view.has_accounts = self.view.ids.welcome.has_accounts = bool(self.service.accounts())
        self.screens.current = name
        self.view.screen_changed(name)

    def refresh(self) -> None:
        """Redraw Home (and the bars) now; the other screens later, off the path of a new
        request (a card must reach the screen within a frame or two; see idle.py)."""
        accounts = self.service.accounts()
        by_id = {a.device_id: a for a in accounts}
        pending = self.service.inbox.pending()
        ids = self.view.ids
        ids.home.show(pending, by_id)
        self.screens_changed()
        self.view.pending_count = len(pending)
        self.view.has_accounts = ids.welcome.has_accounts = bool(accounts)
        self.view.connection = self._connection_summary(accounts)
        self.view.offline = ids.home.offline = bool(accounts) and any(
            self.service.states.get(a.device_id) not in ("connected", "locked", None)
            for a in accounts)
        ids.settings.locked = self.service.lock.enabled
        for item in pending:
            self._fetch_logo(item.request.get("logo_uri"))

    def refresh_screen(self, name: str) -> None:
        """Redraw History, Code or Settings from the service."""
        accounts = self.service.accounts()
        ids = self.view.ids
        if name == "history":
            ids.history.show(self.service.inbox.history(), {a.device_id: a for a in accounts})
        elif name == "code":
            ids.code.show(accounts)
        elif name == "settings":
            ids.settings.show(accounts, self.service.states)

    def _connection_summary(self, accounts: list[Account]) -> str:
        if not accounts:
            return "Not enrolled"
        states = [self.service.states.get(a.device_id) for a in accounts]
        if all(s == "connected" for s in states):
            return "• Connected"
        worst = next((s for s in states if s != "connected"), None)
        return "• " + theme.state_words(worst)

    def retry_now(self) -> None:
        self.service.retry_now()

    # enrollment --------------------------------------------------------------------------
    def enroll_text(self, text: str) -> None:
        self._enrolling()
        self.service.enroll_text(text, self._enrolled, self._enroll_failed, push=self.view.ids.welcome.push)

    def enroll_image(self, path: str) -> None:
        self._enrolling()
        self.service.enroll_image(path, self._enrolled, self._enroll_failed, push=self.view.ids.welcome.push)

    def add_account(self) -> None:
        """Settings → Add an account: the enrollment choices again, with Back and the nav bar."""
        self.view.ids.welcome.set_status("")
        self.show("welcome")

    def _enrolling(self) -> None:
        self.show("welcome")
        self.view.ids.welcome.set_status("Enrolling…")

    def _enrolled(self, account: Account) -> None:
        first = len(self.service.accounts()) == 1
        self.view.ids.welcome.set_status(
            f"This device now serves {account.name or account.username} ({account.username}) "
            f"at {account.provider_label}.", theme.ACCEPT, enrolled=True)
        self.view.ids.welcome.offer_pin = first and not self.service.lock.enabled

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
        lock = self.service.lock
        if accept and lock.enabled and not lock.recently_entered():
            def approve(pin: str) -> str:
                error = self._pin_error(lambda: lock.unlock(pin))
                if not error:
                    self.decide(request_id, True)
                return error
            PinPopup(title="Enter your PIN to approve",
                     message=f"Approve the sign-in to {item.client_name}?", action=approve).open()
            return
        name = item.client_name
        self.service.decide(request_id, accept, lambda result: self._decided(request_id, name, result))

    def _decided(self, request_id: str, client_name: str, result: DecisionResult) -> None:
        self._withdraw(request_id)
        text = f"{theme.OUTCOME_WORDS[result.outcome]}: {client_name}"
        if result.reason:
            text += f"\n{result.reason}"
        if result.outcome == "denied":
            self.show_notice(text, theme.DENY, "I didn't request this",
                             lambda: self.report(request_id), seconds=12)
        else:
            self.show_notice(text, theme.OUTCOME_COLOURS[result.outcome])

    def open_history(self, request_id: str) -> None:
        entry = self.service.inbox.entry(request_id)
        if entry is not None:
            account = self.service.store.get(entry.account_id)
            HistoryDetailPopup(entry=entry, account=account).open()

    def report(self, request_id: str) -> None:
        """“I didn't request this”: tell the provider, then say what to do next."""
        entry = self.service.inbox.entry(request_id)
        account = self.service.store.get(entry.account_id) if entry else None
        if account is None:
            log.info("report: no history entry or account for this request")
            return

        def done(body: dict) -> None:
            MessagePopup(title="Reported — thank you", message=theme.report_advice(
                body.get("client_name") or entry.request.get("client_name") or "The application",
                account)).open()

        def failed(exc: Exception) -> None:
            MessagePopup(title="Not reported", message="The report could not be sent "
                         f"({getattr(exc, 'description', '') or getattr(exc, 'error', 'error')}). "
                         "Open it in History and try again when you are online.").open()

        if not self.service.report(request_id, done, failed):
            log.info("report: not sent")

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
        """Where the file picker opens: the folder used last, else the one the app was started
        in (where ``ciba-provider demo`` puts its QR image), else Downloads or home."""
        last = getattr(self, "_last_folder", None)
        for folder in (last, Path.cwd(), Path.home() / "Downloads", Path.home()):
            if folder and Path(folder).is_dir():
                return str(folder)
        return "/"

    def remember_folder(self, folder: str) -> None:
        self._last_folder = folder

    def clipboard_text(self) -> str:
        try:
            from kivy.core.clipboard import Clipboard
            return Clipboard.paste() or ""
        except Exception:
            return ""
