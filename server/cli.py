"""The ``ciba-provider`` command: serve, and manage users, clients, keys and devices.

Every command takes ``--instance DIR`` (or CIBA_INSTANCE_PATH) so several providers can live
side by side. Operator mistakes print one clear line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Callable

from . import audit
from .admin import AdminError, ClientSpec, add_client, add_user, list_clients, list_users, remove_client
from .admin_clients import endpoint_warnings
from .admin_users import set_admin, set_notification_mode
from .config import Settings
from .logs import configure as configure_logs
from .notify import bus
from .notify.modes import AUTO, MODES
from .oauth.clients import AUTH_METHODS, CIBA_GRANT_TYPE, DELIVERY_MODES, GRANT_TYPES
from .oauth.request_object import REQUEST_OBJECT_ALGS
from .provider import Provider
from .storage.migrate import SchemaOutdated

#: Settings that ``serve`` also takes as flags (--gotify-url, --tls-cert, ...).
GOTIFY_FLAGS = ("gotify_url", "gotify_admin_user", "gotify_admin_password")
TLS_FLAGS = ("tls_cert", "tls_key", "tls_client_ca")

#: Modules that add their own sub-commands: each has ``register(subparsers, common)``.
EXTENSIONS = ("server.cli_devices", "server.cli_db", "server.cli_certs", "server.cli_audit",
              "server.demo.cli")


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--instance", metavar="DIR", default=None,
                        help="instance folder (default: $CIBA_INSTANCE_PATH or ./instance)")
    common.add_argument("--issuer", metavar="URL", default=None,
                        help="public base URL of the provider (default: http://HOST:PORT)")
    return common


def provider_from(args: argparse.Namespace) -> Provider:
    from .wiring import build_provider

    return build_provider(settings_from(args))


def settings_from(args: argparse.Namespace) -> Settings:
    issuer = getattr(args, "issuer", None)
    flags = {name: getattr(args, name, None) for name in GOTIFY_FLAGS + TLS_FLAGS}
    if not issuer and hasattr(args, "port") and not os.environ.get("CIBA_ISSUER"):
        tls = flags.get("tls_cert") or os.environ.get("CIBA_TLS_CERT")
        issuer = f"{'https' if tls else 'http'}://{args.host}:{args.port}"
    if getattr(args, "no_upgrade", False):
        flags["db_auto_upgrade"] = False
    return Settings.from_env(instance_path=getattr(args, "instance", None), issuer=issuer,
                             **flags)


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(prog="ciba-provider",
                                     description="OpenID Connect CIBA provider")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the provider")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--gotify-url", metavar="URL", help="Gotify server (CIBA_GOTIFY_URL)")
    serve.add_argument("--gotify-admin-user", metavar="USER",
                       help="Gotify admin login (CIBA_GOTIFY_ADMIN_USER)")
    serve.add_argument("--gotify-admin-password", metavar="PASSWORD",
                       help="Gotify admin password; prefer CIBA_GOTIFY_ADMIN_PASSWORD, which "
                            "other users cannot read in the process list")
    serve.add_argument("--no-upgrade", action="store_true",
                       help="do not upgrade the database schema at start; refuse an old one")
    tls = serve.add_argument_group("https and mutual TLS (RFC 8705)")
    tls.add_argument("--tls-cert", metavar="FILE", help="serve https with this PEM certificate "
                                                         "(CIBA_TLS_CERT)")
    tls.add_argument("--tls-key", metavar="FILE", help="its private key (CIBA_TLS_KEY)")
    tls.add_argument("--tls-client-ca", metavar="FILE",
                     help="CAs of tls_client_auth client certificates; clients are asked for a "
                          "certificate, not required to send one (CIBA_TLS_CLIENT_CA)")
    serve.set_defaults(func=cmd_serve)

    run = sub.add_parser("run", help="production on one host: HTTP and device WebSockets, "
                                     "settings from CIBA_*")
    run.add_argument("--bind", default="0.0.0.0:5000", help="HTTP address (default %(default)s)")
    run.add_argument("--device-bind", default="0.0.0.0:5001",
                     help="device WebSocket address: route /device/ws here (default "
                          "%(default)s); with --server gunicorn a second address for everything")
    run.add_argument("--workers", type=int, default=None,
                     help="HTTP processes (default: one per core this process may use, within "
                          "a container's CPU quota)")
    run.add_argument("--server", choices=["granian", "gunicorn"], default="granian",
                     help="granian: granian for HTTP and one gunicorn gevent process for the "
                          "device sockets (default); gunicorn: gevent workers serve everything "
                          "on every address")
    run.set_defaults(func=cmd_run)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="action", required=True)
    u_add = users.add_parser("add", parents=[common], help="add a user")
    u_add.add_argument("username")
    u_add.add_argument("--password", required=True)
    u_add.add_argument("--name", default="")
    u_add.add_argument("--email", default=None)
    u_add.add_argument("--admin", action="store_true", help="may open the operator page /admin")
    u_add.set_defaults(func=cmd_users_add)
    users.add_parser("list", parents=[common], help="list users").set_defaults(func=cmd_users_list)
    u_notify = users.add_parser("notify", parents=[common],
                                help="choose how a user's login requests reach them")
    u_notify.add_argument("username")
    u_notify.add_argument("--mode", required=True, choices=MODES + (AUTO,))
    u_notify.set_defaults(func=cmd_users_notify)
    u_admin = users.add_parser("set-admin", parents=[common], help="allow /admin to a user")
    u_admin.add_argument("username")
    u_admin.add_argument("--revoke", action="store_true", help="take the permission away")
    u_admin.set_defaults(func=cmd_users_set_admin)

    clients = sub.add_parser("clients", help="manage clients").add_subparsers(dest="action",
                                                                               required=True)
    c_add = clients.add_parser("add", parents=[common], help="register a client; prints JSON")
    c_add.add_argument("client_id")
    c_add.add_argument("--secret", default=None, help="default: a strong secret, printed once")
    c_add.add_argument("--auth-method", choices=AUTH_METHODS, default="client_secret_basic")
    c_add.add_argument("--jwks", metavar="FILE", default=None,
                       help="public JWKS of the client (private_key_jwt, signed requests; "
                            "with x5c for self_signed_tls_client_auth)")
    c_add.add_argument("--jwks-uri", metavar="URL", default=None,
                       help="where the client publishes its JWKS (instead of --jwks)")
    c_add.add_argument("--grant-type", action="append", default=None, metavar="G",
                       choices=GRANT_TYPES,
                       help=f"repeatable, one of {', '.join(GRANT_TYPES)}; default "
                            f"{CIBA_GRANT_TYPE} and refresh_token")
    mtls = c_add.add_argument_group("mutual TLS (RFC 8705)")
    mtls.add_argument("--tls-subject-dn", metavar="DN", default=None,
                      help='tls_client_auth: the certificate subject, e.g. "CN=console,O=Example"')
    mtls.add_argument("--tls-san-dns", metavar="NAME", default=None)
    mtls.add_argument("--tls-san-uri", metavar="URI", default=None)
    mtls.add_argument("--tls-san-ip", metavar="IP", default=None)
    mtls.add_argument("--tls-san-email", metavar="EMAIL", default=None)
    mtls.add_argument("--bound-tokens", action=argparse.BooleanOptionalAction, default=None,
                      help="certificate-bound access tokens (default: on for the TLS methods "
                           "and --fapi)")
    c_add.add_argument("--request-signing-alg", choices=REQUEST_OBJECT_ALGS, default=None,
                       help="require signed authentication requests with this alg (CIBA §7.1.1)")
    c_add.add_argument("--fapi", action="store_true",
                       help="FAPI-CIBA profile: signed requests, mTLS or private_key_jwt, "
                            "PS256/ES256, bound tokens, poll or ping")
    c_add.add_argument("--delivery-mode", choices=DELIVERY_MODES, default="poll")
    c_add.add_argument("--notification-endpoint", default=None, metavar="URL")
    c_add.add_argument("--polling-interval", type=int, default=None, metavar="SECONDS")
    c_add.add_argument("--ciba-lifetime", type=int, default=None, metavar="SECONDS")
    c_add.add_argument("--scope", default="openid profile email offline_access")
    c_add.add_argument("--name", default="")
    c_add.add_argument("--client-uri", default=None, metavar="URL",
                       help="the client's home page, shown to users with its name")
    c_add.add_argument("--logo-uri", default=None, metavar="URL",
                       help="the client's logo (https), shown to users with its name")
    c_add.add_argument("--user-code-required", action="store_true",
                       help="the client must send user_code (CIBA §7.1)")
    c_add.add_argument("--id-token-alg", default=None, choices=["RS256", "ES256", "PS256"])
    c_add.set_defaults(func=cmd_clients_add)
    clients.add_parser("list", parents=[common]).set_defaults(func=cmd_clients_list)
    c_tok = clients.add_parser(
        "registration-token", parents=[common],
        help="make an initial access token for dynamic client registration (RFC 7591); "
             "the token is the last line of the output")
    c_tok.add_argument("--expires-in", type=int, default=86400, metavar="SECONDS",
                       help="lifetime (default one day)")
    c_tok.add_argument("--single-use", action="store_true", help="good for one registration")
    c_tok.add_argument("--label", default="", help="a note for the operator page")
    c_tok.set_defaults(func=cmd_clients_registration_token)
    c_rm = clients.add_parser("remove", parents=[common])
    c_rm.add_argument("client_id")
    c_rm.set_defaults(func=cmd_clients_remove)

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="action", required=True)
    k_rot = keys.add_parser("rotate", parents=[common],
                            help="publish new keys now; they sign after --publish-ahead seconds")
    k_rot.add_argument("--publish-ahead", type=int, default=3600, metavar="SECONDS")
    k_rot.set_defaults(func=cmd_keys_rotate)
    keys.add_parser("list", parents=[common]).set_defaults(func=cmd_keys_list)
    k_ret = keys.add_parser("retire", parents=[common],
                            help="stop publishing a key (tokens it signed no longer verify)")
    k_ret.add_argument("kid")
    k_ret.set_defaults(func=cmd_keys_retire)

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub, common)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from .launcher import run, usable_cpus

    return run(args.bind, args.device_bind, max(1, args.workers or usable_cpus()), args.server)


def cmd_serve(args: argparse.Namespace) -> int:
    from . import create_app

    from .oauth.mtls import CertificateFileError

    settings = settings_from(args)
    configure_logs(settings.log_format)
    try:
        app = create_app(settings)
    except CertificateFileError as exc:
        raise AdminError(str(exc)) from None
    provider = app.extensions["ciba"]
    ssl_context = None
    if provider.settings.tls_cert:
        from .tls import server_context

        try:
            ssl_context = server_context(provider)
        except (OSError, ValueError) as exc:
            raise AdminError(f"cannot load the TLS certificate, key or client CA: {exc}") from None
    provider.outbox.start()  # ping/push deliveries, also those left from before a restart
    print(f"CIBA provider at {provider.issuer} (instance {os.path.abspath(provider.settings.instance_path)})",
          flush=True)
    from .devserver import run

    return run(app, args.host, args.port, provider.settings.serve_read_timeout, ssl_context)


def cmd_users_add(args) -> int:
    p = provider_from(args)
    user = add_user(p, args.username, args.password, args.name, args.email, is_admin=args.admin)
    _print_json({"id": user.id, "username": user.username, "name": user.name, "email": user.email})
    return 0


def cmd_users_list(args) -> int:
    _print_json([{"id": u.id, "username": u.username, "name": u.name, "email": u.email,
                  "notification_mode": u.notification_mode or "auto"}
                 for u in list_users(provider_from(args))])
    return 0


def cmd_users_notify(args) -> int:
    p = provider_from(args)
    user = set_notification_mode(p, args.username, args.mode)
    if args.mode == "gotify" and not p.settings.gotify_url:
        print("warning: CIBA_GOTIFY_URL is not set here; the server falls back to the console "
              "link unless it runs with a Gotify server", file=sys.stderr)
    print(f"{user.username}: notification mode {user.notification_mode or AUTO}")
    return 0


def cmd_users_set_admin(args) -> int:
    set_admin(provider_from(args), args.username, not args.revoke)
    print(f"{args.username}: {'not ' if args.revoke else ''}an operator")
    return 0


def cmd_clients_add(args) -> int:
    jwks = None
    if args.jwks:
        try:
            with open(args.jwks) as fh:
                jwks = json.load(fh)
        except (OSError, ValueError) as exc:
            raise AdminError(f"cannot read JWKS from {args.jwks}: {exc}") from None
    spec = ClientSpec(
        client_id=args.client_id, secret=args.secret, auth_method=args.auth_method, jwks=jwks,
        grant_types=args.grant_type or [], delivery_mode=args.delivery_mode,
        notification_endpoint=args.notification_endpoint, polling_interval=args.polling_interval,
        ciba_lifetime=args.ciba_lifetime, scope=args.scope, name=args.name,
        client_uri=args.client_uri, logo_uri=args.logo_uri,
        user_code_required=args.user_code_required, id_token_signed_response_alg=args.id_token_alg,
        jwks_uri=args.jwks_uri, tls_subject_dn=args.tls_subject_dn, tls_san_dns=args.tls_san_dns,
        tls_san_uri=args.tls_san_uri, tls_san_ip=args.tls_san_ip,
        tls_san_email=args.tls_san_email, bound_tokens=args.bound_tokens,
        request_signing_alg=args.request_signing_alg, fapi=args.fapi)
    metadata, secret = add_client(provider_from(args), spec)
    for warning in endpoint_warnings(spec):
        print(f"warning: {warning}", file=sys.stderr)
    if secret:
        metadata["client_secret"] = secret  # shown once; only a hash is stored
    _print_json(metadata)
    return 0


def cmd_clients_list(args) -> int:
    _print_json(list_clients(provider_from(args)))
    return 0


def cmd_clients_registration_token(args) -> int:
    from .registration import issue_initial_token

    p = provider_from(args)
    token, row = issue_initial_token(p, args.label, args.expires_in, args.single_use,
                                     audit.cli_actor())
    print(f"Initial access token {row.id} for {p.endpoint('/register')}"
          f"{' (single use)' if row.single_use else ''}, valid {args.expires_in} s; shown once:")
    print(token)
    return 0


def cmd_clients_remove(args) -> int:
    remove_client(provider_from(args), args.client_id)
    print(f"removed client {args.client_id}")
    return 0


def cmd_keys_rotate(args) -> int:
    p = provider_from(args)
    kids = p.keys.rotate(args.publish_ahead)
    audit.record(p, "keys_rotated", audit.cli_actor(), kids=kids, publish_ahead=args.publish_ahead)
    print(f"published keys {', '.join(kids)}; they sign from {args.publish_ahead} s from now")
    return 0


def cmd_keys_retire(args) -> int:
    keys = provider_from(args).keys
    published = [k["kid"] for k in keys.jwks()["keys"]]
    if args.kid not in published:
        raise AdminError(f"no published key {args.kid!r} (see: ciba-provider keys list)")
    if args.kid in {keys.signing_key(alg).kid for alg in ("RS256", "ES256")}:
        raise AdminError(f"key {args.kid} signs tokens now: rotate first (keys rotate), then "
                         "retire it once tokens it signed have expired")
    keys.retire(args.kid)
    print(f"retired key {args.kid}; it is no longer in the JWKS")
    return 0


def cmd_keys_list(args) -> int:
    _print_json(provider_from(args).keys.jwks())
    return 0


def _print_json(value) -> None:
    print(json.dumps(value, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args) or 0
    except (AdminError, SchemaOutdated) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        bus.flush_all()  # events a command published (a revocation) reach the servers first


if __name__ == "__main__":
    sys.exit(main())
