"""``ciba-provider certs``: a test CA, a server certificate and client certificates for the
mutual-TLS setup (README "Mutual TLS"); prints what was written and how to register it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import certs


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "certs", help="make a test CA, a server certificate and client certificates (mTLS)")
    parser.add_argument("--dir", default="certs", metavar="DIR",
                        help="where to write them (the CA there is reused)")
    parser.add_argument("--server-host", action="append", default=[], metavar="HOST",
                        help="the server certificate's DNS name or IP address; repeatable (one "
                             "certificate for all)")
    parser.add_argument("--client", action="append", default=[], metavar="NAME",
                        help="a client certificate CN=NAME,O=ORG issued by the CA "
                             "(tls_client_auth); repeatable")
    parser.add_argument("--self-signed", action="append", default=[], metavar="NAME",
                        help="a self-signed client certificate and NAME-jwks.json "
                             "(self_signed_tls_client_auth); repeatable")
    parser.add_argument("--org", default="Example", help="O= of every subject (default Example)")
    parser.set_defaults(func=cmd_certs)


def cmd_certs(args) -> int:
    directory = Path(args.dir)
    ca, _ = certs.ensure_ca(directory, args.org)
    out: dict = {"ca": str(directory / "ca.pem"), "clients": [], "self_signed": []}
    if args.server_host:
        issued = certs.server_certificate(directory, args.server_host, args.org)
        out["server"] = {"hosts": args.server_host, "cert": str(issued.cert),
                         "key": str(issued.key)}
    for name in args.client:
        issued = certs.client_certificate(directory, name, args.org)
        out["clients"].append({"name": name, "cert": str(issued.cert), "key": str(issued.key),
                               "tls_subject_dn": issued.subject_dn})
    for name in args.self_signed:
        issued, jwks = certs.self_signed_client(directory, name, args.org)
        out["self_signed"].append({"name": name, "cert": str(issued.cert), "key": str(issued.key),
                                   "jwks": str(jwks)})
    print(json.dumps(out, indent=2))
    return 0
