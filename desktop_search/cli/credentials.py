"""``desktop-search credentials set|delete URI``: keep the S3 keys of a shared index in the system keychain
(core/location.py), never in the settings file."""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from desktop_search.cli.common import EXIT_OK, CliError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("credentials", help="keep the keys of a shared index (s3://...) in the system keychain")
    p.add_argument("action", choices=("set", "delete"))
    p.add_argument("uri", metavar="URI", help="the shared index, e.g. s3://bucket/team-index")
    p.set_defaults(run=cmd_credentials)


def cmd_credentials(args: argparse.Namespace) -> int:
    """Keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when set, else asked for (the secret without echo)."""
    from desktop_search.core.location import IndexLocation, RemoteError, keychain_delete, keychain_set

    try:
        uri = IndexLocation.parse(args.uri).uri
        if args.action == "delete":
            print("deleted" if keychain_delete(uri) else f"nothing was stored for {uri}")
            return EXIT_OK
        key_id = os.environ.get("AWS_ACCESS_KEY_ID") or input("access key id: ").strip()
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or getpass.getpass("secret access key: ").strip()
        if not key_id or not secret:
            raise CliError("both the access key id and the secret access key are needed")
        keychain_set(uri, key_id, secret, os.environ.get("AWS_SESSION_TOKEN", ""))
    except EOFError:
        raise CliError("no keys given") from None
    except RemoteError as e:
        raise CliError(str(e)) from None
    print(f"saved the keys for {uri} in the system keychain")
    return EXIT_OK
