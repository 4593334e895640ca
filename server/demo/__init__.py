"""The kiosk demo: the library kiosk (a CIBA client over HTTP), the loans resource API, the
``ciba-provider demo`` command and the ``ciba-client`` console consumption device.
See docs/demo.md."""
