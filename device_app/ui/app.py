"""CibaDeviceApp: the Kivy application. It wires the screens to a DeviceService.

The service does the work on worker threads; its results come back here through
Clock.schedule_once (``_dispatch``) so that every widget is touched on the UI thread only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import threading

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout

from device_app.core.api import DecisionResult, ProviderError
from device_app.core.enrollment import EnrollmentLinkError
from device_app.core.logos import LogoCache
from device_app.core.notifications import DesktopNotifier
from device_app.core.qr import NoQRCode
from device_app.core.service import DeviceService
from device_app.core.store import Account

from . import theme
from .camera import ScanScreen  # noqa: F401  (registers the class for app.kv)
from .screens import CodeScreen, HistoryScreen, HomeScreen, SettingsScreen, WelcomeScreen  # noqa: F401
from device_app.core.lock import PinError

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


class CibaDeviceApp(App):
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
        self.service = DeviceService(self.data_dir, dispatch=self._dispatch, on_change=self.refresh,
                                     on_notice=self._on_notice)
        self.logos = LogoCache(self.data_dir)
        self.notifier = DesktopNotifier()
        self.view = RootView()
        self.screens = self.view.ids.screens
        self.view.ids.settings.data_dir = str(self.data_dir)
        return self.view

    def on_start(self) -> None:
        self.service.start()
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
        if name != "home" and hasattr(self, "_refresh_rest"):
            self._refresh_other_screens()
        self.view.has_accounts = self.view.ids.welcome.has_accounts = bool(self.service.accounts())
        self.screens.current = name
        self.view.screen_changed(name)

    def refresh(self) -> None:
        """Redraw Home (and the bars) now; the other screens a moment later, off the path of a
        new request (a card must reach the screen within a frame or two)."""
        accounts = self.service.accounts()
        by_id = {a.device_id: a for a in accounts}
        pending = self.service.inbox.pending()
        ids = self.view.ids
        ids.home.show(pending, by_id)
        if not hasattr(self, "_refresh_rest"):
            self._refresh_rest = Clock.create_trigger(self._refresh_other_screens, 0.15)
        self._refresh_rest()
        self.view.pending_count = len(pending)
        self.view.has_accounts = ids.welcome.has_accounts = bool(accounts)
        self.view.connection = self._connection_summary(accounts)
        self.view.offline = ids.home.offline = bool(accounts) and any(
            self.service.states.get(a.device_id) not in ("connected", "locked", None)
            for a in accounts)
        ids.settings.locked = self.service.lock.enabled
        for item in pending:
            self._fetch_logo(item.request.get("logo_uri"))

    def _refresh_other_screens(self, *_args) -> None:
        accounts = self.service.accounts()
        by_id = {a.device_id: a for a in accounts}
        ids = self.view.ids
        ids.history.show(self.service.inbox.history(), by_id)
        ids.code.show(accounts)
        ids.settings.show(accounts, self.service.states)
        ids.home.keep_spare_card()

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

    # notices (the snackbar) and desktop notifications ------------------------------------
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
        log.info("notice pressed (action=%s, callback=%s)", action, callback is not None)
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
        """A new request: a desktop notification (with sound) when the window is not in front."""
        if self.in_front:
            return
        account = self.service.store.get(item.account_id)
        body = f"Check that it shows: {item.binding_message}" if item.binding_message else \
            "Open the app to answer."
        if account is not None:
            body += f"\nFor {theme.account_chip(account)}"
        request_id = item.request_id

        def send() -> None:
            nid = self.notifier.notify(f"Sign-in request from {item.client_name}", body)
            if nid:
                Clock.schedule_once(lambda _dt: self._notifications.__setitem__(request_id, nid))

        threading.Thread(target=send, daemon=True).start()

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

    # the app lock ------------------------------------------------------------------------
    @staticmethod
    def _pin_error(work) -> str:
        try:
            work()
        except PinError as exc:
            return str(exc)
        return ""

    def ask_unlock(self) -> None:
        """At start with a PIN set: the keys open (and requests arrive) once it is entered."""
        PinPopup(title="Enter your PIN",
                 message="This app is locked. Enter your PIN to receive and answer sign-in requests.",
                 action=lambda pin: self._pin_error(lambda: self.service.unlock(pin)),
                 forgot=self.confirm_forget_pin).open()

    def confirm_forget_pin(self) -> None:
        ConfirmPopup(message="Without the PIN the keys cannot be opened. Remove every account from "
                             "this device? You can enroll again with new codes.",
                     confirm_text="Remove all", action=self._forget_pin).open()

    def _forget_pin(self) -> None:
        for popup in [w for w in Window.children if isinstance(w, PinPopup)]:
            popup.dismiss()
        self.service.forget_pin()
        self.view.ids.welcome.set_status("")
        self.show("welcome")

    def ask_new_pin(self) -> None:
        lock = self.service.lock
        if lock.enabled:
            def change(pin: str) -> str:
                error = self._pin_error(lambda: lock.unlock(pin))
                if not error:
                    Clock.schedule_once(lambda _dt: self._choose_pin(current=pin), 0.3)
                return error
            PinPopup(title="Change PIN", message="Enter your current PIN.", action=change).open()
        else:
            self._choose_pin()

    def _choose_pin(self, current: str | None = None) -> None:
        def chosen(pin: str) -> str:
            error = self._pin_error(lambda: self.service.set_pin(pin, current))
            if not error:
                self.show_notice("PIN set: the keys on this device are encrypted with it.",
                                 theme.ACCEPT)
            return error
        PinPopup(title="Choose a PIN", message="4 to 12 digits. Accept will ask for it; the keys "
                                               "are encrypted with it.", action=chosen).open()

    def ask_remove_pin(self) -> None:
        def remove(pin: str) -> str:
            error = self._pin_error(lambda: self.service.remove_pin(pin))
            if not error:
                self.show_notice("PIN removed: the keys are files only you can read.", theme.WARN)
            return error
        PinPopup(title="Remove PIN", message="Enter your PIN to turn the app lock off.",
                 action=remove).open()

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
