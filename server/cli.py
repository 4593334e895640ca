"""The ``ciba-provider`` command: serve, and manage users, clients, keys and devices.

Every command takes ``--instance DIR`` (or CIBA_INSTANCE_PATH) so several providers can live
side by side. Operator mistakes print one clear line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Callable

from . import audit
from .admin import AdminError, ClientSpec, add_client, add_user, list_clients, list_users, remove_client
from .admin_clients import endpoint_warnings
from .admin_users import set_admin, set_notification_mode
from .config import Settings
from .notify.modes import AUTO, MODES
from .oauth.clients import AUTH_METHODS, CIBA_GRANT_TYPE, DELIVERY_MODES
from .provider import Provider

#: Settings that ``serve`` also takes as flags (--gotify-url, ...).
GOTIFY_FLAGS = ("gotify_url", "gotify_admin_user", "gotify_admin_password")

#: Modules that add their own sub-commands: each has ``register(subparsers, common)``.
EXTENSIONS = ("server.cli_devices", "server.cli_audit", "server.demo.cli")


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--instance", metavar="DIR", default=None,
                        help="instance folder (default: $CIBA_INSTANCE_PATH or ./instance)")
    common.add_argument("--issuer", metavar="URL", default=None,
                        help="public base URL of the provider (default: http://HOST:PORT)")
    return common


def provider_from(args: argparse.Namespace) -> Provider:
    return Provider(settings_from(args))


def settings_from(args: argparse.Namespace) -> Settings:
    issuer = getattr(args, "issuer", None)
    if not issuer and hasattr(args, "port") and not os.environ.get("CIBA_ISSUER"):
        issuer = f"http://{args.host}:{args.port}"
    return Settings.from_env(instance_path=getattr(args, "instance", None), issuer=issuer,
                             **{name: getattr(args, name, None) for name in GOTIFY_FLAGS})


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
    serve.set_defaults(func=cmd_serve)

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
                       help="public JWKS of the client (private_key_jwt)")
    c_add.add_argument("--grant-type", action="append", default=None, metavar="G",
                       help=f"repeatable; default {CIBA_GRANT_TYPE} and refresh_token")
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

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub, common)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from . import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings_from(args))
    provider = app.extensions["ciba"]
    print(f"CIBA provider at {provider.issuer} (instance {os.path.abspath(provider.settings.instance_path)})",
          flush=True)
    from .devserver import run

    return run(app, args.host, args.port)


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
        user_code_required=args.user_code_required, id_token_signed_response_alg=args.id_token_alg)
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
    from .oauth.registration import issue_initial_token

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
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
