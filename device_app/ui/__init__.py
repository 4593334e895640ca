"""The Kivy face of the device app: screens (.py + .kv) on top of device_app.core."""
