"""`conclave ledger ...`: the commands that verify, export and import a stored ledger."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

LEDGER_EPILOG = """\
examples:
  conclave ledger verify                          the dev chain in the default data directory
  conclave ledger verify --data-dir ./chain --json
  conclave ledger verify --database-url postgresql+psycopg://user@localhost/conclave
  conclave ledger export backup.sqlite            a consistent copy, even of a running node
  conclave ledger import backup.sqlite --data-dir ./restored
  conclave ledger import backup.sqlite --data-dir ./node --database-url postgresql+psycopg://user@host/new

verify exits 0 when the whole ledger checks out, 1 when it found discrepancies (each is
printed with its block), 2 when there is no ledger to check. export writes a new SQLite
file that is itself a ledger (verify it with --database-url sqlite:///FILE); import copies
one into an empty database and verifies the result unless --no-verify is given.

The ledger's state is stored sealed with the node's ledger secrets, which its enclave keeps
in DATA_DIR/enclave: verify and import read them there (with --database-url too), so a
backup is restored together with the node's enclave directory.
"""


def add_ledger_commands(commands: Any, default_data_dir: Path) -> None:
    """Add `ledger verify` to the `conclave` sub-command parsers."""
    ledger = commands.add_parser(
        "ledger",
        help="verify a stored ledger offline",
        description="Work on a node's stored ledger while the node is stopped or running.",
        epilog=LEDGER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = ledger.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, summary: str, run: str) -> Any:
        parser = actions.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=LEDGER_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="the node's data directory: its ledger (unless --database-url) and its enclave's "
            f"sealed keys, in enclave/ (default: {default_data_dir})",
        )
        parser.add_argument(
            "--database-url", default=None, help="the ledger's database URL instead of DATA_DIR/ledger.sqlite"
        )
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
        parser.set_defaults(run=lambda args: _action(run)(args, default_data_dir))
        return parser

    action(
        "verify",
        "re-check every block from genesis: hash links, transaction and receipt roots, state by replay",
        "run_verify",
    )
    export = action(
        "export", "copy the ledger into a new SQLite file, as one consistent snapshot", "run_export"
    )
    export.add_argument("file", type=Path, help="the backup file to create (must not exist)")
    restore = action(
        "import", "copy a ledger exported before into an empty database, then verify it", "run_import"
    )
    restore.add_argument("file", type=Path, help="a file written by `conclave ledger export`")
    restore.add_argument("--no-verify", action="store_true", help="skip verifying the imported ledger")


def _action(name: str) -> Callable[[argparse.Namespace, Path], Any]:
    """The action, imported when run: `conclave --help` should not load py-evm and SQL."""
    return getattr(importlib.import_module("gateway.ledger_actions"), name)  # type: ignore[no-any-return]
