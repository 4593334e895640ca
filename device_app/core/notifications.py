"""Desktop notifications for new sign-in requests, with a sound.

On Linux this calls the freedesktop Desktop Notifications service
(``org.freedesktop.Notifications`` on the session bus; spec 1.2: ``Notify`` and
``CloseNotification``) with jeepney, a pure-Python D-Bus library: no GObject introspection, no
dbus-python (a C extension), no ``notify-send`` process, and it gives back the notification id,
so the notification is withdrawn when the request is decided, cancelled or expires.

One sound, never two: the app plays its own (ui/sound.py) and then asks the server for silence
(the spec's ``suppress-sound`` hint); where the app has no audio output, the notification
carries the spec's ``sound-name`` hint instead (``message-new-instant`` from the freedesktop
sound theme), played by servers that play sounds; with the sound off in Settings, silence.
Other platforms (Android, Windows, macOS): plyer's notification facade when installed; otherwise
nothing is shown and the app works as before. Android 13+ shows them only once the person has
allowed POST_NOTIFICATIONS at run time (``request_permission``, asked at start). Every call
blocks briefly: call from a worker thread.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

APP_NAME = "CIBA Authenticator"
SOUND = "message-new-instant"
#: Android 13 (API 33) made notifications a run-time permission; the manifest entry
#: (buildozer.spec) alone no longer shows them.
POST_NOTIFICATIONS = "android.permission.POST_NOTIFICATIONS"
TIMEOUT_MS = 60_000  # the request card has the countdown; the notification need not stay longer


class DesktopNotifier:
    def __init__(self) -> None:
        self._connection = None
        self.available = bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS"))
        self.denied = False  # the person said no on Android: nothing to show, nothing to try

    def request_permission(self, platform: str) -> None:
        """On Android, ask once for POST_NOTIFICATIONS unless already granted (the system asks
        the person and remembers the answer); a refusal only turns notifications off, the app
        works as before. Elsewhere there is nothing to ask."""
        if platform != "android":
            return
        try:  # python-for-android's module; Android 12 and older grant it with the manifest
            from android.permissions import check_permission, request_permissions  # type: ignore
        except ImportError:
            return
        if check_permission(POST_NOTIFICATIONS):
            return

        def answered(_permissions, grants) -> None:
            self.denied = not all(grants)
            if self.denied:
                log.info("Notifications not allowed; requests show in the app only")

        request_permissions([POST_NOTIFICATIONS], answered)

    def _bus(self):
        if self._connection is None:
            from jeepney.io.blocking import open_dbus_connection

            self._connection = open_dbus_connection(bus="SESSION")
        return self._connection

    def _call(self, method: str, signature: str, body: tuple):
        from jeepney import DBusAddress, new_method_call

        address = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                              interface="org.freedesktop.Notifications")
        reply = self._bus().send_and_get_reply(new_method_call(address, method, signature, body),
                                               timeout=5)
        return reply.body

    def notify(self, title: str, body: str, sound: bool = True) -> int:
        """Show a notification, with the theme's sound if ``sound`` (else silent); its id (0
        when none could be shown)."""
        if self.denied:
            return 0
        if not self.available:
            return self._plyer(title, body)
        hints = {"urgency": ("y", 2), "category": ("s", "im.received"),
                 "desktop-entry": ("s", "ciba-device")}
        hints.update({"sound-name": ("s", SOUND)} if sound else {"suppress-sound": ("b", True)})
        try:
            (nid,) = self._call("Notify", "susssasa{sv}i",
                                (APP_NAME, 0, "dialog-password", title, body, [], hints,
                                 TIMEOUT_MS))
            return int(nid)
        except Exception as exc:  # no notification server on the bus, bus gone, ...
            log.info("No desktop notification (%s)", type(exc).__name__)
            self.available = False
            return 0

    def close(self, nid: int) -> None:
        if not nid or not self.available:
            return
        try:
            self._call("CloseNotification", "u", (nid,))
        except Exception as exc:
            log.info("Could not withdraw a notification (%s)", type(exc).__name__)

    def _plyer(self, title: str, body: str) -> int:
        """Android, Windows, macOS: plyer's notification facade (no id: it cannot be withdrawn).
        plyer is in the app extra for Windows and macOS, and in buildozer.spec for Android."""
        if getattr(self, "_plyer_failed", False):
            return 0
        try:
            from plyer import notification  # type: ignore[import-not-found]
        except ImportError:
            return 0
        try:
            notification.notify(title=title, message=body, app_name=APP_NAME, timeout=60)
        except Exception as exc:  # no backend on this platform (plyer raises NotImplementedError)
            log.info("No notification (%s)", type(exc).__name__)
            self._plyer_failed = True
        return 0
