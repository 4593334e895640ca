"""Console: registered clients (/admin/clients): list, create, edit, rotate the secret, remove.

Every change goes through server/admin.py and server/admin_clients.py, as the CLI's do; a new
secret is shown once, in the answer to the POST that made it (never stored in the session or
a redirect). Warnings about endpoints a self-registered client could not use are shown after
saving.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for

from ..admin import AdminError, add_client, remove_client
from ..admin_security import KEY_METHODS
from ..admin_clients import endpoint_warnings, get_spec, listing, rotate_secret, update_client
from . import client_form
from .context import current_provider
from .operator import actor, operator_required, page

bp = Blueprint("admin_clients", __name__, url_prefix="/admin/clients")


@bp.get("/")
@operator_required
def index():
    return page("admin_clients.html", clients=listing(current_provider()))


@bp.route("/new", methods=["GET", "POST"])
@operator_required
def create():
    spec = client_form.new_spec()
    error = None
    if request.method == "POST":
        try:
            spec = client_form.spec_from_form(request.form, table=_table())
            metadata, secret = add_client(current_provider(), spec, actor=actor())
        except AdminError as exc:
            error = str(exc)
        else:
            return page("admin_client_saved.html", metadata=metadata, secret=secret,
                        warnings=endpoint_warnings(spec), created=True)
    return _form(spec, error, creating=True)


@bp.route("/<client_id>", methods=["GET", "POST"])
@operator_required
def edit(client_id: str):
    p = current_provider()
    try:
        spec = get_spec(p, client_id)
    except AdminError:
        abort(404, "No such client.")
    error = None
    if request.method == "POST":
        try:
            spec = client_form.spec_from_form(request.form, client_id, _table())
            metadata, secret = update_client(p, spec, actor=actor())
        except AdminError as exc:
            error = str(exc)
        else:
            return page("admin_client_saved.html", metadata=metadata, secret=secret,
                        warnings=endpoint_warnings(spec), created=False)
    return _form(spec, error, creating=False)


@bp.post("/<client_id>/rotate-secret")
@operator_required
def rotate(client_id: str):
    p = current_provider()
    try:
        secret = rotate_secret(p, client_id, actor=actor())
        metadata = p.get_client(client_id).metadata()
    except AdminError as exc:
        flash(str(exc))
        return redirect(url_for("admin_clients.edit", client_id=client_id))
    return page("admin_client_saved.html", metadata=metadata, secret=secret, warnings=[],
                created=False, rotated=True)


@bp.post("/<client_id>/remove")
@operator_required
def remove(client_id: str):
    try:
        remove_client(current_provider(), client_id, actor=actor())
    except AdminError:
        abort(404, "No such client.")
    flash(f"Client {client_id} was removed; its requests and tokens went with it.")
    return redirect(url_for("admin_clients.index"))


def _table():
    return client_form.fields(current_provider().scopes_supported)


def _form(spec, error: str | None, creating: bool):
    """The form: the stored (or default) values, or after an error what was typed."""
    values = client_form.typed_values(request.form, None if creating else spec.client_id) \
        if error else client_form.values(spec)
    return page("admin_client_form.html", 400 if error else 200, fields=_table(),
                key_methods=KEY_METHODS,
                values=values, client_id=spec.client_id, error=error, creating=creating)
