"""The console's client form as one table of fields: each row names a ``ClientSpec`` attribute,
its label, its input kind and its choices. The template draws the inputs from the table and
``spec_from_form`` reads them back, so adding a client setting is adding one row here (and the
attribute to ClientSpec)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .. import jsonsafe
from ..admin import DEFAULT_SCOPE, AdminError, ClientSpec
from ..oauth.clients import AUTH_METHODS, DELIVERY_MODES, GRANT_TYPES
from ..oauth.keys import SUPPORTED_ALGS
from ..oauth.request_object import REQUEST_OBJECT_ALGS
from ..provider import SCOPES


@dataclass(frozen=True)
class Field:
    name: str  # the ClientSpec attribute and the form input's name
    label: str
    kind: str  # text | url | number | select | tristate (default/yes/no) | multi | checkbox | json
    choices: tuple[str, ...] = ()
    help: str = ""
    create_only: bool = False  # fixed once registered (the client_id)


FIELDS: tuple[Field, ...] = (
    Field("client_id", "Client ID", "text", help="Letters, digits and - _ . ; fixed once created.",
          create_only=True),
    Field("name", "Display name", "text", help="Shown to people on their device and the "
          "approval page."),
    Field("client_uri", "Home page", "url", help="https; shown with the name."),
    Field("logo_uri", "Logo", "url", help="https URL of an image shown with the name."),
    Field("auth_method", "Client authentication", "select", AUTH_METHODS),
    Field("jwks", "Public keys (JWKS)", "json", help="private_key_jwt and signed requests: the "
          "client's public JWKS (self_signed_tls_client_auth: with the certificate in x5c), or "
          "leave empty and give a JWKS URI."),
    Field("jwks_uri", "JWKS URI", "url", help="Where the client publishes its keys instead."),
    Field("tls_subject_dn", "Certificate subject DN", "text",
          help='tls_client_auth (RFC 8705 §2.1.2): e.g. "CN=console,O=Example"; or one SAN '
          "below, exactly one in all."),
    Field("tls_san_dns", "Certificate SAN: DNS name", "text"),
    Field("tls_san_uri", "Certificate SAN: URI", "text"),
    Field("tls_san_ip", "Certificate SAN: IP address", "text"),
    Field("tls_san_email", "Certificate SAN: email", "text"),
    Field("bound_tokens", "Certificate-bound access tokens", "tristate", ("", "yes", "no"),
          help="RFC 8705 §3: default on for the mutual-TLS methods and FAPI-CIBA."),
    Field("request_signing_alg", "Request signing algorithm", "select",
          ("",) + REQUEST_OBJECT_ALGS,
          help="Set: authentication requests must be signed request objects (CIBA §7.1.1)."),
    Field("fapi", "FAPI-CIBA profile", "checkbox", help="Signed requests, mutual TLS or "
          "private_key_jwt, PS256/ES256, bound tokens, poll or ping."),
    Field("grant_types", "Grant types", "multi", GRANT_TYPES),
    Field("scope", "Allowed scopes", "multi", tuple(SCOPES)),
    Field("delivery_mode", "Token delivery mode", "select", DELIVERY_MODES,
          help="poll, ping or push (CIBA §5)."),
    Field("notification_endpoint", "Client notification endpoint", "url",
          help="Required for ping and push: https."),
    Field("polling_interval", "Polling interval (s)", "number",
          help="Empty: the provider's default."),
    Field("ciba_lifetime", "Request lifetime (s)", "number",
          help="Empty: the provider's default."),
    Field("user_code_required", "Requires a user code", "checkbox",
          help="The client must send the user's user_code (CIBA §7.1)."),
    Field("id_token_signed_response_alg", "ID token algorithm", "select",
          ("",) + tuple(SUPPORTED_ALGS), help="Empty: the provider's default."),
)


def fields(scopes: list[str]) -> tuple[Field, ...]:
    """The table with this provider's scopes (CIBA_API_SCOPES included) as the scope choices."""
    return tuple(replace(f, choices=tuple(scopes)) if f.name == "scope" else f for f in FIELDS)


TRISTATE = {None: "", True: "yes", False: "no"}


def new_spec() -> ClientSpec:
    return ClientSpec(client_id="", scope=DEFAULT_SCOPE,
                      grant_types=["urn:openid:params:grant-type:ciba", "refresh_token"])


def values(spec: ClientSpec) -> dict[str, object]:
    """What each input shows: strings for text inputs, lists for multi-choice ones."""
    out: dict[str, object] = {}
    for f in FIELDS:
        value = getattr(spec, f.name)
        if f.kind == "multi":
            out[f.name] = value.split() if isinstance(value, str) else list(value or [])
        elif f.kind == "json":
            out[f.name] = json.dumps(value, indent=2) if value else ""
        elif f.kind == "checkbox":
            out[f.name] = bool(value)
        elif f.kind == "tristate":
            out[f.name] = TRISTATE[value]
        else:
            out[f.name] = "" if value is None else str(value)
    return out


def typed_values(form, client_id: str | None = None) -> dict[str, object]:
    """What the person typed, to show again with an error (nothing typed is lost)."""
    out: dict[str, object] = {}
    for f in FIELDS:
        if f.kind == "multi":
            out[f.name] = form.getlist(f.name)
        elif f.kind == "checkbox":
            out[f.name] = form.get(f.name) in ("on", "1", "true")
        else:
            out[f.name] = form.get(f.name, "")
    if client_id is not None:
        out["client_id"] = client_id
    return out


def spec_from_form(form, client_id: str | None = None,
                   table: tuple[Field, ...] = FIELDS) -> ClientSpec:
    """A ClientSpec from the posted form (``client_id`` given when editing; ``table`` from
    ``fields``); AdminError says which field is wrong."""
    data: dict[str, object] = {}
    for f in table:
        if f.create_only and client_id is not None:
            data[f.name] = client_id
            continue
        raw = form.get(f.name, "").strip()
        if f.kind == "multi":
            chosen = [v for v in form.getlist(f.name) if v in f.choices]
            data[f.name] = " ".join(chosen) if f.name == "scope" else chosen
        elif f.kind == "checkbox":
            data[f.name] = raw in ("on", "1", "true")
        elif f.kind == "number":
            if raw and not raw.isdigit():
                raise AdminError(f"{f.label}: a whole number of seconds, or empty")
            data[f.name] = int(raw) if raw else None
        elif f.kind == "json":
            try:
                data[f.name] = jsonsafe.loads(raw) if raw else None
            except jsonsafe.JSONInputError:
                raise AdminError(f"{f.label}: not valid JSON") from None
        elif f.kind == "tristate":
            answer = {v: k for k, v in TRISTATE.items()}
            if raw not in answer:
                raise AdminError(f"{f.label}: choose default, yes or no")
            data[f.name] = answer[raw]
        elif f.kind == "select":
            if raw not in f.choices and raw:
                raise AdminError(f"{f.label}: choose one of {', '.join(c for c in f.choices if c)}")
            data[f.name] = raw or None
        else:
            data[f.name] = raw or None
    if not data["grant_types"]:
        raise AdminError("Grant types: choose at least one")
    if not data["client_id"]:
        raise AdminError("Client ID: required")
    if not _client_id_ok(str(data["client_id"])):
        raise AdminError("Client ID: use letters, digits and - _ . (at most 100)")
    data["name"] = data["name"] or ""
    data["scope"] = data["scope"] or ""
    data["auth_method"] = data["auth_method"] or "client_secret_basic"
    data["delivery_mode"] = data["delivery_mode"] or "poll"
    return ClientSpec(**data)


def _client_id_ok(value: str) -> bool:
    return 0 < len(value) <= 100 and all(c.isascii() and (c.isalnum() or c in "-_.")
                                         for c in value)
