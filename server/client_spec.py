"""A client registration as the operator layer states it: what the CLI, the console's client
form and dynamic registration (RFC 7591) fill in, and what ``admin.validate`` and
``admin_security.security_profile`` check before ``admin.add_client`` stores it. Its own module
so that both admin modules can use it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_SCOPE = "openid profile email offline_access"


@dataclass
class ClientSpec:
    client_id: str
    secret: str | None = None
    auth_method: str = "client_secret_basic"
    jwks: dict | None = None
    jwks_uri: str | None = None
    grant_types: list[str] = field(default_factory=list)
    delivery_mode: str = "poll"
    notification_endpoint: str | None = None
    polling_interval: int | None = None
    ciba_lifetime: int | None = None
    scope: str = DEFAULT_SCOPE
    name: str = ""
    client_uri: str | None = None
    logo_uri: str | None = None
    user_code_required: bool = False
    id_token_signed_response_alg: str | None = None
    # RFC 8705 §2.1.2: which certificate is the client's (tls_client_auth; exactly one).
    tls_subject_dn: str | None = None
    tls_san_dns: str | None = None
    tls_san_uri: str | None = None
    tls_san_ip: str | None = None
    tls_san_email: str | None = None
    # RFC 8705 §3.4; None: on for the mutual-TLS methods and FAPI clients, off otherwise.
    bound_tokens: bool | None = None
    # CIBA §4 backchannel_authentication_request_signing_alg: requests must be signed.
    request_signing_alg: str | None = None
    fapi: bool = False
