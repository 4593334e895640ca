"""Authentication devices (docs/device-protocol.md): enrollment codes, device keys, device JWS,
signed decisions and TOTP user codes (CIBA §7.1 user_code). No Flask here; the web layer is
server/web/device.py and server/web/devices_pages.py; server/wiring.py builds it.
"""
