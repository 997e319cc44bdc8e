"""What the commands that act for an account share: how they take its key, how they fail,
and how a command that talks to a node is told where it is (`add_node_command`).

The key comes from `--key` (hex), `--key-file` (an Ethereum keystore, its password from
`--password-file` or asked for), or the CONCLAVE_KEY environment variable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_RPC = "http://127.0.0.1:8545"


class CommandError(Exception):
    """What went wrong, for the user; exit status 1."""


def add_node_command(
    actions: Any, name: str, help: str, *, description: str | None = None, epilog: str | None = None
) -> argparse.ArgumentParser:
    """Subcommand `name` of `actions` (an argparse subparsers action) that talks to a node:
    with `--rpc` (the node's URL) and `--json`."""
    command: argparse.ArgumentParser = actions.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--rpc", default=DEFAULT_RPC, help="the node's URL (default: %(default)s)")
    command.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return command


def add_key_arguments(command: argparse.ArgumentParser, whose: str) -> None:
    """`--key` / `--key-file` (one of them) and `--password-file`, for `whose` key."""
    key = command.add_mutually_exclusive_group()
    key.add_argument("--key", help=f"{whose} private key in hex (or set CONCLAVE_KEY)")
    key.add_argument("--key-file", type=Path, help="an Ethereum keystore (JSON) file holding the key")
    command.add_argument(
        "--password-file", type=Path, help="the keystore's password (asked for when missing)"
    )


def load_account(args: argparse.Namespace, whose: str) -> Any:
    """The eth_account account of the key the arguments name; CommandError if there is none."""
    from eth_account import Account

    if args.key_file is not None:
        try:
            keystore = json.loads(args.key_file.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"could not read the keystore {args.key_file}: {exc}") from None
        password = (
            args.password_file.read_text().rstrip("\n")
            if args.password_file is not None
            else getpass.getpass(f"password for {args.key_file}: ")
        )
        try:
            return Account.from_key(Account.decrypt(keystore, password))
        except ValueError as exc:
            raise CommandError(f"could not unlock {args.key_file}: {exc}") from None
    key = args.key or os.environ.get("CONCLAVE_KEY")
    if not key:
        raise CommandError(f"{whose} key is needed: --key, --key-file, or CONCLAVE_KEY")
    try:
        return Account.from_key(key)
    except ValueError as exc:
        raise CommandError(f"the key is not a private key: {exc}") from None
