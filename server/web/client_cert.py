"""Where the TLS client certificate of a request comes from (RFC 8705 §2, §3), in one place.

- Direct TLS (``ciba-provider serve --tls-cert ...``): werkzeug puts the verified peer
  certificate in ``SSL_CLIENT_CERT``.
- Behind a TLS-terminating proxy: the proxy forwards it in the header named by
  ``CIBA_TLS_CLIENT_CERT_HEADER``. The header is believed only when ``CIBA_TRUSTED_PROXIES`` is
  set and the connection comes from an address in ``CIBA_TLS_CLIENT_CERT_PROXIES``; from anyone
  else it is ignored, so a client cannot claim a certificate it does not hold.

The middleware wraps the app outside werkzeug's ProxyFix, so ``REMOTE_ADDR`` is still the
peer's own address. The parsed certificate (or None) lands in ``environ[ENVIRON_KEY]``.
"""

from __future__ import annotations

import ipaddress
import logging

from ..config import Settings
from ..oauth.mtls import ENVIRON_KEY, load_certificate

log = logging.getLogger(__name__)


class ClientCertificateMiddleware:
    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        header = settings.tls_client_cert_header.strip()
        self.header_key = "HTTP_" + header.upper().replace("-", "_") if header else None
        self.proxies = [ipaddress.ip_network(n.strip(), strict=False)
                        for n in settings.tls_client_cert_proxies.split(",") if n.strip()]
        self.proxy_trusted = settings.trusted_proxies > 0

    def __call__(self, environ, start_response):
        cert = load_certificate(environ.get("SSL_CLIENT_CERT"))
        if self.header_key:
            forwarded = environ.pop(self.header_key, None)
            if forwarded and cert is None and self._from_proxy(environ.get("REMOTE_ADDR")):
                cert = load_certificate(forwarded)
            elif forwarded:
                log.warning("ignored a client certificate header from %s, which is not a "
                            "trusted proxy", environ.get("REMOTE_ADDR"))
        environ[ENVIRON_KEY] = cert
        return self.app(environ, start_response)

    def _from_proxy(self, address: str | None) -> bool:
        if not self.proxy_trusted or not address:
            return False
        try:
            peer = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        return any(peer in net for net in self.proxies)

