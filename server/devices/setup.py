"""Wires the devices package into a Provider: ``install(provider)``, idempotent.

Registers the WebSocket channel with the notifier (through the bus to this process's hub),
``provider.user_code_verifier`` (CIBA §7.1), ``provider.default_channel`` (websocket once the
user has an active device, else console), and the web extension that adds the device API
(/device/...) and the account pages (/account/devices). Afterwards:

- ``provider.devices``: the DeviceService (enroll, authenticate, decide, revoke, ...)
- ``provider.device_hub``, ``provider.device_bus``, ``provider.device_housekeeper``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..notify.bus import make_bus
from ..notify.hub import Hub
from ..notify.setup import install as install_notifications
from ..notify.websocket import WebSocketChannel, attach
from . import payloads
from .housekeeping import Housekeeper
from .service import DeviceService
from .user_codes import UserCodeVerifier

if TYPE_CHECKING:
    from ..provider import Provider


def install(provider: "Provider") -> DeviceService:
    existing = getattr(provider, "devices", None)
    if isinstance(existing, DeviceService):
        return existing
    bus = make_bus(provider.settings.redis_url, provider.issuer)
    hub = Hub()
    attach(bus, hub)
    channel = WebSocketChannel(bus, payloads.from_event)
    provider.notifier.register(channel)
    service = DeviceService(provider, channel)
    provider.devices = service
    provider.device_bus = bus
    provider.device_hub = hub
    provider.device_housekeeper = Housekeeper(provider, hub)
    provider.user_code_verifier = UserCodeVerifier(provider)
    provider.default_channel = service.default_channel
    install_notifications(provider, service)  # modes, the Gotify channel, /admin

    def extend(app) -> None:
        from ..web import device, devices_pages

        device.init_app(app)
        app.register_blueprint(devices_pages.bp)

    provider.web_extensions.append(extend)
    return service
