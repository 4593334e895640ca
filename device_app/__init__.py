"""The CIBA authentication-device app (Kivy): device_app.core (logic) and device_app.ui (screens)."""
