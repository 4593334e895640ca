"""``ciba-client``: a console consumption device (CIBA §7 request, §10.1 poll or §10.2 ping).

    ciba-client --issuer URL --client-id ID (--secret S | --private-key FILE | --cert FILE --key FILE)
                --login-hint HINT [--ca FILE] [--signed-request] [--binding-message M] [--scope S]
                [--mode poll|ping] [--listen HOST:PORT]

With ``--cert`` and ``--key`` every call goes over mutual TLS with that client certificate:
alone, the certificate authenticates the client (RFC 8705 tls_client_auth or
self_signed_tls_client_auth); with ``--private-key`` it only binds the tokens (FAPI-CIBA).
``--ca`` names the CA that signed the provider's certificate. ``--signed-request`` sends the
authentication request as a request object signed with ``--private-key`` (CIBA §7.1.1).

It starts a backchannel authentication request, shows a spinner with the time left while the
user decides (polling at the provider's interval, 5 s slower after each slow_down), then prints
the tokens and the ID token's verified claims, or the error and what it means.

Exit status: 0 tokens received; 3 the user denied (access_denied); 4 the request expired
(expired_token); 1 any other error from the provider (its code and meaning are printed);
5 the provider could not be reached or answered something unexpected; 2 bad command-line
usage; 130 interrupted (Ctrl-C while waiting also cancels the request at the provider, so the
user's device stops asking).
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

import requests

from ..security import equal
from .ciba_client import CibaClient, CibaError, ClientCredentials, Started, next_interval

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DENIED, EXIT_EXPIRED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130
EXIT_BY_ERROR = {"access_denied": EXIT_DENIED, "expired_token": EXIT_EXPIRED,
                 "transfer_failed": EXIT_UNREACHABLE}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ciba-client", description="Console CIBA client: ask a user to approve a sign-in.",
        epilog="Exit status: 0 success, 3 denied, 4 expired, 1 other provider error, "
               "5 provider unreachable, 2 usage.")
    parser.add_argument("--issuer", required=True, help="the provider's issuer URL")
    parser.add_argument("--client-id", required=True)
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--secret", help="client secret (client_secret_basic)")
    auth.add_argument("--private-key", metavar="FILE",
                      help="private key as JWK, JWKS or PEM (private_key_jwt)")
    tls = parser.add_argument_group("mutual TLS (RFC 8705)")
    tls.add_argument("--cert", metavar="FILE", help="client certificate (PEM); alone it "
                     "authenticates the client (tls_client_auth / self_signed_tls_client_auth)")
    tls.add_argument("--key", metavar="FILE", help="the client certificate's private key (PEM)")
    tls.add_argument("--ca", metavar="FILE", help="CA certificate(s) to trust for the provider's "
                     "https certificate (default: the system's)")
    parser.add_argument("--signed-request", action="store_true",
                        help="send a signed request object (CIBA §7.1.1; needs --private-key)")
    parser.add_argument("--login-hint", required=True, help="username or email of the user")
    parser.add_argument("--binding-message", default=None, help="text shown on the user's device")
    parser.add_argument("--scope", default="openid profile email")
    parser.add_argument("--mode", choices=["poll", "ping"], default="poll",
                        help="how the result arrives; ping needs the client registered with "
                             "--notification-endpoint http://HOST:PORT/ matching --listen")
    parser.add_argument("--listen", default="127.0.0.1:8765", metavar="HOST:PORT",
                        help="where to receive the ping (--mode ping)")
    parser.add_argument("--requested-expiry", type=int, default=None, metavar="SECONDS")
    return parser


class PingReceiver:
    """A tiny HTTP endpoint for the CIBA §10.2 ping, checked against our notification token."""

    def __init__(self, listen: str, token: str) -> None:
        host, _, port = listen.rpartition(":")
        self.token, self.auth_req_id = token, None
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
                ok = (scheme.lower() == "bearer" and equal(token.strip(), receiver.token)
                      and isinstance(body, dict) and isinstance(body.get("auth_req_id"), str))
                self.send_response(204 if ok else 400)
                self.end_headers()
                if ok:
                    receiver.auth_req_id = body["auth_req_id"]
                    receiver.event.set()

            def log_message(self, *args) -> None:
                return None

        self.server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Spinner:
    """``⠋ Waiting for alice… 4:58 left`` on a terminal; plain lines otherwise."""

    def __init__(self, out: TextIO, started: Started, hint: str) -> None:
        self.out, self.started, self.hint = out, started, hint
        self.tty = out.isatty()
        self.frames = itertools.cycle(SPINNER)

    def wait(self, seconds: float, until: threading.Event | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.tty:
                left = int(self.started.remaining())
                self.out.write(f"\r{next(self.frames)} Waiting for {self.hint} to approve… "
                               f"{left // 60}:{left % 60:02d} left ")
                self.out.flush()
            step = min(0.1, max(0.0, end - time.monotonic()))
            if until is not None and until.wait(step):
                break
            if until is None:
                time.sleep(step)

    def say(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        self.out.flush()


class _Session(requests.Session):
    """A session whose own ``verify`` (``--ca``) wins over REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE,
    which plain requests lets override a session's setting."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            merged["verify"] = self.verify
        return merged


def _session(args: argparse.Namespace) -> requests.Session:
    """HTTP with the client certificate (mutual TLS) and the CA for the provider, if given."""
    http = _Session()
    if args.cert:
        for path in (args.cert, args.key):
            with open(path, "rb"):
                pass  # a clear error now rather than an SSL error at the first call
        http.cert = (args.cert, args.key)
    if args.ca:
        with open(args.ca, "rb"):
            pass
        http.verify = args.ca
    return http


def usage_problem(args: argparse.Namespace) -> str | None:
    if not (args.secret or args.private_key or args.cert):
        return "give --secret, --private-key, or --cert and --key"
    if bool(args.cert) != bool(args.key):
        return "--cert and --key go together"
    if args.signed_request and not args.private_key:
        return "--signed-request needs --private-key to sign with"
    return None


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    problem = usage_problem(args)
    if problem:
        print(f"error: {problem}", file=err)
        return EXIT_USAGE
    try:
        creds = (ClientCredentials.from_key_file(args.client_id, args.private_key)
                 if args.private_key else ClientCredentials(args.client_id, args.secret))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the private key: {exc}", file=err)
        return EXIT_USAGE
    creds.tls_certificate = bool(args.cert) and not args.secret and not args.private_key
    try:
        http = _session(args)
    except OSError as exc:
        print(f"error: cannot read the certificate, key or CA: {exc}", file=err)
        return EXIT_USAGE
    client = CibaClient(args.issuer, creds, session=http, signed_request=args.signed_request)
    receiver = None
    try:
        token = None
        if args.mode == "ping":
            if not client.supports_mode("ping"):
                print("error: the provider does not offer ping delivery; use --mode poll", file=err)
                return EXIT_ERROR
            token = secrets.token_urlsafe(32)
            try:
                receiver = PingReceiver(args.listen, token)
            except (OSError, ValueError) as exc:
                print(f"error: cannot listen on {args.listen} for the ping: {exc}", file=err)
                return EXIT_USAGE
        started = client.start(args.login_hint, scope=args.scope,
                               binding_message=args.binding_message,
                               requested_expiry=args.requested_expiry,
                               client_notification_token=token)
        spinner = Spinner(out, started, args.login_hint)
        try:  # from here on a Ctrl-C withdraws the request (even while the lines below print)
            reached = ("; no device is set up for them: they answer through the approval link "
                       "the provider logs" if started.delivery == "console" else "'s device")
            spinner.say(f"Request sent to {args.login_hint}{reached}"
                        + (f" with the binding message “{args.binding_message}”"
                           if args.binding_message else "")
                        + f". It expires in {started.expires_in} s; "
                        + (f"polling every {started.interval} s." if receiver is None
                           else f"waiting for the ping at http://{args.listen}/."))
            spinner.say(f"auth_req_id: {started.auth_req_id}")
            tokens = _wait(client, started, spinner, receiver)
        except KeyboardInterrupt:
            spinner.say("Interrupted: " + _withdraw(client, started.auth_req_id))
            return EXIT_INTERRUPTED
        spinner.say("Approved.")
        _print_tokens(client, tokens, out, err)
        return EXIT_OK
    except CibaError as exc:
        if out.isatty():
            out.write("\r\033[K")
        label = {"access_denied": "Denied", "expired_token": "Expired"}.get(exc.error, "Error")
        print(f"{label}: {exc.error}: {exc.meaning}"
              + (f" ({exc.description})" if exc.description else ""), file=err)
        return EXIT_BY_ERROR.get(exc.error, EXIT_ERROR)
    finally:
        if receiver is not None:
            receiver.close()


def _withdraw(client: CibaClient, auth_req_id: str) -> str:
    """Cancel the request at the provider so the user's device stops asking; what happened."""
    try:
        if client.cancel(auth_req_id):
            return "the request was cancelled at the provider."
        return "the provider offers no cancel; the request stays until it expires."
    except CibaError as exc:
        return f"the provider did not cancel the request ({exc.error}: {exc.meaning})."


def _wait(client: CibaClient, started: Started, spinner: Spinner,
          receiver: PingReceiver | None) -> dict:
    interval = float(started.interval)
    while True:
        if receiver is not None:
            spinner.wait(started.remaining() + 1, until=receiver.event)
        else:
            spinner.wait(min(interval, started.remaining() + 1))
        try:
            return client.token(started.auth_req_id)
        except CibaError as exc:
            if exc.error not in ("authorization_pending", "slow_down"):
                raise
            if exc.error == "slow_down":
                spinner.say(f"The provider asked to slow down: polling every "
                            f"{int(next_interval(interval, exc))} s from now on.")
            interval = next_interval(interval, exc)
            if started.remaining() <= 0:
                raise CibaError("expired_token", "still pending when the request expired") from None
            if receiver is not None:
                receiver.event.clear()


def _print_tokens(client: CibaClient, tokens: dict, out: TextIO, err: TextIO) -> None:
    for key in ("access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"):
        if key in tokens:
            print(f"{key}: {tokens[key]}", file=out)
    bound = _bound_thumbprint(str(tokens.get("access_token", "")))
    if bound:
        print(f"The access token is bound to this client certificate (RFC 8705 x5t#S256 "
              f"{bound}): use it only over TLS with that certificate.", file=out)
    if tokens.get("id_token"):
        try:
            claims = client.id_token_claims(tokens["id_token"])
            print("ID token claims (signature verified with the provider's JWKS):", file=out)
        except Exception as exc:  # shown, not fatal: the tokens were issued
            print(f"warning: the ID token did not verify: {exc}", file=err)
            return
        print(json.dumps(claims, indent=2, sort_keys=True), file=out)


def _bound_thumbprint(access_token: str) -> str | None:
    """cnf.x5t#S256 of a JWT access token, read without verifying (only to tell the user)."""
    import base64

    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["cnf"]["x5t#S256"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
