"""``ciba-provider serve`` over https with mutual TLS, and nginx in front of a provider.

``TlsProviderProcess`` serves with ``--tls-cert/--tls-key/--tls-client-ca`` (RFC 8705 directly).
``Nginx`` runs Debian's nginx as this (unprivileged) user on a free port with its own prefix and
configuration in a temporary folder: it terminates TLS, asks for a client certificate without
checking it against a CA (``optional_no_ca``: self-signed certificates must pass; the provider
decides), and forwards it URL-encoded in ``X-Client-Cert`` from a loopback address of its own
(``proxy_bind``), so that the provider can tell it from anyone else on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.certs import Pki
from tests.support.provider_process import Process, ProviderProcess, free_port, wait_http

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CERT_HEADER = "X-Client-Cert"


class TlsProviderProcess(ProviderProcess):
    def __init__(self, workdir: Path, pki: Pki, **kwargs) -> None:
        super().__init__(workdir, **kwargs)
        self.pki = pki
        self.base_url = f"https://127.0.0.1:{self.port}"
        if "issuer" not in kwargs:
            self.issuer = self.base_url
        self.verify = str(pki.ca)

    def command(self) -> list[str]:
        cert, key = self.pki.server
        return super().command() + ["--tls-cert", str(cert), "--tls-key", str(key),
                                    "--tls-client-ca", str(self.pki.ca)]


class Nginx:
    """nginx terminating TLS for an upstream provider on 127.0.0.1:<upstream_port>."""

    def __init__(self, workdir: Path, pki: Pki, upstream_port: int, proxy_address: str) -> None:
        self.prefix = Path(workdir) / "nginx"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        cert, key = pki.server
        (self.prefix / "logs").mkdir(parents=True, exist_ok=True)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(f"""
daemon off;
worker_processes 1;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {self.prefix}/logs/access.log;
  client_body_temp_path {self.prefix}/body;
  proxy_temp_path {self.prefix}/proxy;
  fastcgi_temp_path {self.prefix}/fastcgi;
  uwsgi_temp_path {self.prefix}/uwsgi;
  scgi_temp_path {self.prefix}/scgi;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_verify_client optional_no_ca;
    location / {{
      proxy_pass http://127.0.0.1:{upstream_port};
      proxy_bind {proxy_address};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header {CERT_HEADER} $ssl_client_escaped_cert;
    }}
  }}
}}
""")
        self.process: Process | None = None
        self.verify = str(pki.ca)

    def start(self) -> "Nginx":
        check = subprocess.run([NGINX, "-t", "-p", str(self.prefix), "-c", str(self.conf)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = Process([NGINX, "-p", str(self.prefix), "-c", str(self.conf)])
        wait_http(self.url + "/.well-known/openid-configuration", 30, self.process,
                  verify=self.verify)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
