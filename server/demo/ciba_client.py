"""A small CIBA client over HTTP, shared by the kiosk and ``ciba-client``.

It speaks to the provider only through its published endpoints: discovery (OIDC Discovery §4),
the backchannel authentication endpoint (CIBA §7), the token endpoint with the CIBA grant
(CIBA §10.1, §11), UserInfo and the JWKS. Client authentication is client_secret_basic,
private_key_jwt (RFC 7523 §2.2, assertion built with joserfc) or a TLS client certificate
(RFC 8705 §2: tls_client_auth / self_signed_tls_client_auth; the certificate also binds the
access token, §3). With ``signed_request`` the authentication request is a request object signed
with the private key (CIBA §7.1.1).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
TIMEOUT = 10.0
#: Discovery name of the provider's client-initiated cancel endpoint (an extension).
CANCEL_ENDPOINT = "ciba_stack_backchannel_cancel_endpoint"

#: What each CIBA error code means, in words for a person (CIBA §11, §13; RFC 6749 §5.2).
ERROR_MEANINGS = {
    "authorization_pending": "the user has not decided yet",
    "slow_down": "the client polled too fast; it must wait longer between polls",
    "expired_token": "the request expired before the user decided",
    "access_denied": "the user denied the request",
    "invalid_request": "the request is malformed or misses a parameter",
    "invalid_scope": "a requested scope is unknown or not allowed for this client",
    "expired_login_hint_token": "the login_hint_token has expired",
    "unknown_user_id": "the provider knows no user by that hint",
    "unauthorized_client": "this client is not allowed to use CIBA",
    "missing_user_code": "this client must send a user_code",
    "invalid_user_code": "the user_code is wrong",
    "invalid_binding_message": "the binding message is not acceptable (too long or not plain text)",
    "invalid_client": "client authentication failed (wrong client id, secret or key)",
    "invalid_grant": "the auth_req_id is unknown, belongs to another client or was already used",
    "unsupported_grant_type": "the provider does not accept the CIBA grant",
    "transfer_failed": "the provider could not be reached or answered something unexpected",
}


class CibaError(Exception):
    """An OAuth error answer (or a transport failure, as ``transfer_failed``)."""

    def __init__(self, error: str, description: str = "", status: int | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description, self.status = error, description, status

    @property
    def meaning(self) -> str:
        return ERROR_MEANINGS.get(self.error, "an error the provider reported")


@dataclass
class ClientCredentials:
    client_id: str
    secret: str | None = None
    private_key: dict | None = None  # a private JWK (RSA or EC) for private_key_jwt
    # RFC 8705: the client is authenticated by its TLS certificate (the HTTP session's).
    tls_certificate: bool = False

    @classmethod
    def from_key_file(cls, client_id: str, path: str) -> "ClientCredentials":
        """Read a private key: a JWK (JSON), a JWKS with one key, or a PEM file."""
        with open(path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            data = json.loads(text)
            if "keys" in data:
                data = data["keys"][0]
            return cls(client_id, private_key=data)
        for kind in (RSAKey, ECKey):
            try:
                key = kind.import_key(raw)
            except (JoseError, ValueError, TypeError):
                continue
            as_dict = key.as_dict(private=True)
            as_dict.setdefault("kid", key.thumbprint())
            return cls(client_id, private_key=as_dict)
        raise ValueError(f"{path} holds no RSA or EC private key (JWK or PEM)")


@dataclass
class Started:
    """The backchannel authentication response (CIBA §7.3)."""

    auth_req_id: str
    expires_in: int
    interval: int
    started_at: float = field(default_factory=time.monotonic)
    #: This provider's extension (README): "device", or "console" when the person has no
    #: enrolled device; None from a provider without it.
    delivery: str | None = None

    @property
    def deadline(self) -> float:
        return self.started_at + self.expires_in

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.deadline - (time.monotonic() if now is None else now))

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started_at


class CibaClient:
    """One confidential client of one provider."""

    def __init__(self, issuer: str, credentials: ClientCredentials,
                 session: requests.Session | None = None, signed_request: bool = False) -> None:
        self.issuer = issuer.rstrip("/")
        self.credentials = credentials
        self.http = session or requests.Session()
        self.signed_request = signed_request
        self._metadata: dict | None = None
        self._jwks: KeySet | None = None

    # -- metadata -----------------------------------------------------------------------------
    @property
    def metadata(self) -> dict:
        if self._metadata is None:
            self._metadata = self._get_json(self.issuer + "/.well-known/openid-configuration")
        return self._metadata

    def supports_mode(self, mode: str) -> bool:
        return mode in self.metadata.get("backchannel_token_delivery_modes_supported", ["poll"])

    def jwks(self, refresh: bool = False) -> KeySet:
        if self._jwks is None or refresh:
            self._jwks = KeySet.import_key_set(self._get_json(self.metadata["jwks_uri"]))
        return self._jwks

    # -- CIBA ---------------------------------------------------------------------------------
    def start(self, login_hint: str, scope: str = "openid", binding_message: str | None = None,
              requested_expiry: int | None = None,
              client_notification_token: str | None = None) -> Started:
        """POST the backchannel authentication request (CIBA §7.1)."""
        endpoint = self.metadata["backchannel_authentication_endpoint"]
        form = {"scope": scope, "login_hint": login_hint}
        if binding_message:
            form["binding_message"] = binding_message
        if requested_expiry is not None:
            form["requested_expiry"] = str(requested_expiry)
        if client_notification_token:
            form["client_notification_token"] = client_notification_token
        if self.signed_request:
            form = {"request": self._request_object(form)}
        body = self._post(endpoint, form)
        try:
            delivery = body.get("ciba_stack_delivery")
            return Started(str(body["auth_req_id"]), int(body["expires_in"]),
                           int(body.get("interval", 5)),
                           delivery=delivery if delivery in ("device", "console") else None)
        except (KeyError, TypeError, ValueError):
            raise CibaError("transfer_failed", "bc-authorize answer lacks auth_req_id") from None

    def token(self, auth_req_id: str) -> dict:
        """One token request with the CIBA grant (CIBA §10.1); raises CibaError when not ready."""
        return self._post(self.metadata["token_endpoint"],
                          {"grant_type": CIBA_GRANT_TYPE, "auth_req_id": auth_req_id})

    def cancel(self, auth_req_id: str) -> bool:
        """Withdraw our pending request (this provider's extension, advertised in discovery as
        ``ciba_stack_backchannel_cancel_endpoint``); False when the provider offers none.

        Raises CibaError when the provider refuses (e.g. ``invalid_grant``: already decided).
        """
        endpoint = self.metadata.get(CANCEL_ENDPOINT)
        if not endpoint:
            return False
        self._post(endpoint, {"auth_req_id": auth_req_id})
        return True

    def revoke(self, token: str, token_type_hint: str = "access_token") -> None:
        """RFC 7009 revocation, when the provider advertises it."""
        endpoint = self.metadata.get("revocation_endpoint")
        if endpoint:
            form, basic = self._auth({"token": token, "token_type_hint": token_type_hint})
            try:
                self.http.post(endpoint, data=form, auth=basic, timeout=TIMEOUT)
            except requests.RequestException as exc:
                raise CibaError("transfer_failed", f"{endpoint}: {type(exc).__name__}") from None

    def userinfo(self, access_token: str) -> dict:
        return self._get_json(self.metadata["userinfo_endpoint"],
                              headers={"Authorization": f"Bearer {access_token}"})

    def id_token_claims(self, id_token: str) -> dict:
        """Verify the ID token's signature against the JWKS and its iss and aud (OIDC Core §3.1.3.7)."""
        try:
            decoded = self._decode(id_token, self.jwks())
        except (JoseError, ValueError):
            decoded = self._decode(id_token, self.jwks(refresh=True))  # keys may have rotated
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.issuer},
                                         aud={"essential": True, "value": self.credentials.client_id},
                                         exp={"essential": True})
        registry.validate(claims)
        return claims

    @staticmethod
    def _decode(token: str, keys: KeySet):
        return jwt.decode(token, keys, algorithms=["RS256", "PS256", "ES256"])

    # -- HTTP ---------------------------------------------------------------------------------
    def _auth(self, form: dict) -> tuple[dict, tuple[str, str] | None]:
        """private_key_jwt when a private key is configured, else the TLS certificate
        (RFC 8705 §2: the client_id parameter names the client), else client_secret_basic."""
        creds = self.credentials
        if creds.private_key is not None:
            return {**form, **self._assertion()}, None
        if creds.tls_certificate:
            return {**form, "client_id": creds.client_id}, None
        return form, (creds.client_id, creds.secret or "")

    def _sign(self, claims: dict) -> str:
        """A JWT signed with the private key: PS256 (RSA) or ES256 (EC), which FAPI accepts."""
        key_data = self.credentials.private_key or {}
        key = (RSAKey if key_data.get("kty") == "RSA" else ECKey).import_key(key_data)
        alg = "PS256" if key_data.get("kty") == "RSA" else "ES256"
        header = {"alg": alg, **({"kid": key_data["kid"]} if key_data.get("kid") else {})}
        return jwt.encode(header, claims, key, algorithms=[alg])

    def _assertion(self) -> dict:
        """private_key_jwt (RFC 7523 §2.2, OIDC Core §9): aud is the issuer."""
        now = int(time.time())
        claims = {"iss": self.credentials.client_id, "sub": self.credentials.client_id,
                  "aud": self.issuer, "jti": secrets.token_urlsafe(24), "iat": now,
                  "exp": now + 60}
        return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self._sign(claims)}

    def _request_object(self, params: dict) -> str:
        """CIBA §7.1.1: the request parameters as claims, with aud, iss, exp, iat, nbf, jti."""
        now = int(time.time())
        claims: dict[str, Any] = {**params, "iss": self.credentials.client_id,
                                  "aud": self.issuer, "iat": now, "nbf": now, "exp": now + 300,
                                  "jti": secrets.token_urlsafe(24)}
        if "requested_expiry" in claims:
            claims["requested_expiry"] = int(claims["requested_expiry"])
        return self._sign(claims)

    def _post(self, url: str, form: dict) -> dict:
        form, basic = self._auth(form)
        try:
            response = self.http.post(url, data=form, auth=basic, timeout=TIMEOUT,
                                      allow_redirects=False)
        except requests.RequestException as exc:
            raise CibaError("transfer_failed", f"{url}: {type(exc).__name__}") from None
        return _json_or_error(response)

    def _get_json(self, url: str, headers: dict | None = None) -> dict:
        try:
            response = self.http.get(url, headers=headers, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise CibaError("transfer_failed", f"{url}: {type(exc).__name__}") from None
        return _json_or_error(response)


def _json_or_error(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            raise CibaError(body["error"], str(body.get("error_description", "")),
                            response.status_code)
        raise CibaError("transfer_failed", f"HTTP {response.status_code} from {response.url}",
                        response.status_code)
    if not isinstance(body, dict):
        raise CibaError("transfer_failed", f"{response.url} did not answer with a JSON object")
    return body


def next_interval(interval: float, error: CibaError) -> float:
    """CIBA §11 / RFC 8628 §3.5: after slow_down wait 5 seconds longer from then on."""
    return interval + 5 if error.error == "slow_down" else interval
