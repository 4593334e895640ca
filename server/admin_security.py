"""Registration rules for a client's keys, certificates and security profile (RFC 7591 §2
jwks/jwks_uri, RFC 8705 §2.1.2 and §3.4, CIBA §4, FAPI-CIBA): checked here once, so that every
stored client can authenticate the way it says."""

from __future__ import annotations

import ipaddress

from .admin_errors import AdminError
from .client_spec import ClientSpec
from .oauth import fapi
from .oauth.mtls import SELF_SIGNED_TLS_CLIENT_AUTH, TLS_CLIENT_AUTH, parse_subject_dn, \
    registered_self_signed
from .oauth.request_object import REQUEST_OBJECT_ALGS

#: Methods that prove the client with a key or certificate, never a shared secret.
KEY_METHODS = ("private_key_jwt", TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH)


def _error(message: str) -> Exception:
    return AdminError(message)


def security_profile(spec: ClientSpec) -> dict:
    """The Client columns for keys, certificates and profile; AdminError when inconsistent."""
    jwks = spec.jwks
    if jwks is not None:
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) \
                or not jwks["keys"]:
            raise _error("the JWKS has no keys")
        if any(not isinstance(k, dict) for k in jwks["keys"]):
            raise _error("each key of the JWKS must be a JSON object (RFC 7517 §5)")
        if any("d" in k for k in jwks["keys"]):
            raise _error("the JWKS contains a private key; give only public keys")
    if spec.jwks_uri and jwks is not None:
        # RFC 7591 §2: jwks and jwks_uri MUST NOT both be present. (The URL itself is checked
        # with the client's other URLs in admin.validate.)
        raise _error("give the client's keys as a JWKS (--jwks) or a JWKS URI (--jwks-uri), "
                     "not both")
    has_keys = bool(jwks or spec.jwks_uri)
    subject = {"tls_client_auth_subject_dn": spec.tls_subject_dn,
               "tls_client_auth_san_dns": spec.tls_san_dns,
               "tls_client_auth_san_uri": spec.tls_san_uri,
               "tls_client_auth_san_ip": spec.tls_san_ip,
               "tls_client_auth_san_email": spec.tls_san_email}
    given = {k: v for k, v in subject.items() if v}
    method = spec.auth_method
    if method == "private_key_jwt" and not has_keys:
        raise _error("private_key_jwt needs --jwks FILE or --jwks-uri URL with the client's "
                     "public keys")
    if method == TLS_CLIENT_AUTH:
        # RFC 8705 §2.1.2: exactly one of the subject metadata values.
        if len(given) != 1:
            raise _error("tls_client_auth needs exactly one of --tls-subject-dn, --tls-san-dns, "
                         "--tls-san-uri, --tls-san-ip, --tls-san-email")
        try:
            if spec.tls_subject_dn:
                parse_subject_dn(spec.tls_subject_dn)
            if spec.tls_san_ip:
                ipaddress.ip_address(spec.tls_san_ip)
        except ValueError as exc:
            raise _error(f"the certificate subject is malformed: {exc}") from None
    elif given:
        raise _error("the --tls-subject-dn/--tls-san-* options are for tls_client_auth")
    if method == SELF_SIGNED_TLS_CLIENT_AUTH:
        # RFC 8705 §2.2: the certificate is registered in the JWKS (x5c).
        if jwks is not None and not registered_self_signed(jwks):
            raise _error("self_signed_tls_client_auth needs a JWKS whose key has the "
                         "certificate in x5c")
        if not has_keys:
            raise _error("self_signed_tls_client_auth needs --jwks FILE (with x5c) or "
                         "--jwks-uri URL")
    alg = spec.request_signing_alg
    if alg and alg not in REQUEST_OBJECT_ALGS:
        raise _error(f"request signing algorithm must be one of {', '.join(REQUEST_OBJECT_ALGS)}")
    if alg and not has_keys:
        raise _error("signed requests need the client's public keys (--jwks or --jwks-uri)")
    bound = spec.bound_tokens
    if bound is None:
        bound = method in (TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH) or spec.fapi
    if spec.fapi:
        problem = fapi.registration_problem(method, spec.delivery_mode, alg,
                                            spec.id_token_signed_response_alg)
        if problem:
            raise _error(problem)
        if not has_keys:
            raise _error("FAPI-CIBA clients sign their requests: give --jwks or --jwks-uri")
        if not bound:
            raise _error("FAPI-CIBA clients receive certificate-bound access tokens")
    if bound and spec.delivery_mode == "push":
        raise _error("push mode delivers tokens without a TLS connection from the client, so "
                     "they cannot be certificate-bound")
    return {**{k: v or None for k, v in subject.items()}, "jwks_uri": spec.jwks_uri or None,
            "tls_client_certificate_bound_access_tokens": bool(bound),
            "backchannel_authentication_request_signing_alg": alg or None,
            "fapi_ciba": spec.fapi}
