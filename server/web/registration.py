"""HTTP glue of dynamic client registration: POST /register (RFC 7591 §3) and GET, PUT, DELETE
/register/<client_id> (RFC 7592 §2), each with a Bearer token (RFC 6750 §2.1). JSON in and out;
errors in one place; the rules (token first, then metadata) live in server/registration.py."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..registration import Registrar, RegistrationError
from .context import current_provider
from .forms import json_or_none

bp = Blueprint("registration", __name__, url_prefix="/register")


@bp.errorhandler(RegistrationError)
def registration_error(exc: RegistrationError):
    return _answer({"error": exc.error, "error_description": exc.description}, exc.status,
                   exc.headers)


def _answer(body: dict | None, status: int, headers: dict | None = None) -> Response:
    response = jsonify(body) if body is not None else Response(status=status)
    response.status_code = status
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"  # RFC 7591 §3.2.1, RFC 7592 §3
    response.headers["Pragma"] = "no-cache"
    return response


def _token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def _body():
    """The JSON sent (RFC 7591 §3.1: application/json), or None, which the core refuses with
    invalid_client_metadata once the token has been checked."""
    return json_or_none(request, current_provider().settings.json_max_depth)


def _registrar() -> Registrar:
    return Registrar(current_provider())


@bp.post("")
def register():
    return _answer(_registrar().register(_token(), _body()), 201)


@bp.get("/<client_id>")
def read(client_id: str):
    return _answer(_registrar().read(client_id, _token()), 200)


@bp.put("/<client_id>")
def update(client_id: str):
    return _answer(_registrar().update(client_id, _token(), _body()), 200)


@bp.delete("/<client_id>")
def delete(client_id: str):
    _registrar().delete(client_id, _token())
    return _answer(None, 204)
