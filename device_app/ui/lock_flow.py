"""The app lock's dialogs (core/lock.py does the cryptography): unlock at start, choose, change
or remove the PIN, and "Forgot PIN". A mixin of CibaDeviceApp."""

from __future__ import annotations

from kivy.clock import Clock
from kivy.core.window import Window

from device_app.core.lock import PinError

from . import theme
from .widgets import ConfirmPopup, PinPopup


class LockFlows:
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

