"""`conclave ledger ...`: offline work on a stored ledger (the node need not run)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from enclave.verification import VerificationReport, verify_ledger
from ledger.store import LedgerStore

from .node import make_engine

LEDGER_EPILOG = """\
examples:
  conclave ledger verify                          the dev chain in the default data directory
  conclave ledger verify --data-dir ./chain --json
  conclave ledger verify --database-url postgresql+psycopg://user@localhost/conclave

verify exits 0 when the whole ledger checks out, 1 when it found discrepancies (each is
printed with its block), 2 when there is no ledger to check.
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
    verify = actions.add_parser(
        "verify",
        help="re-check every block: hash links, roots, receipts, and state by replay",
        description="Re-check the whole chain from genesis: hash links, transaction and receipt "
        "roots, every block's state by replaying its transactions, and the state nodes.",
        epilog=LEDGER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = verify.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir", type=Path, default=None, help=f"the node's data directory (default: {default_data_dir})"
    )
    where.add_argument("--database-url", default=None, help="the ledger's database URL instead")
    verify.add_argument("--json", action="store_true", help="print the report as one JSON object")
    verify.set_defaults(run=lambda args: run_verify(args, default_data_dir))


def _database_url(args: argparse.Namespace, default_data_dir: Path) -> str | None:
    if args.database_url:
        return str(args.database_url)
    path = (args.data_dir or default_data_dir) / "ledger.sqlite"
    return f"sqlite:///{path}" if path.is_file() else None


def run_verify(args: argparse.Namespace, default_data_dir: Path) -> int:
    url = _database_url(args, default_data_dir)
    if url is None:
        where = args.data_dir or default_data_dir
        print(f"error: no ledger in {where}: pass the node's --data-dir or --database-url", file=sys.stderr)
        return 2
    engine = make_engine(url)
    store = LedgerStore(engine)
    try:
        settings = store.settings()
        if "chain_id" not in settings:
            print("error: the database holds no Conclave ledger (no chain settings)", file=sys.stderr)
            return 2
        chain_id = int(settings["chain_id"])
        with tqdm(desc="verifying", unit="block", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:

            def progress(number: int, head: int) -> None:
                bar.total = head + 1
                bar.update(1)

            report = verify_ledger(store, chain_id, on_block=progress)
    finally:
        store.close()
        engine.dispose()
    _print_report(report, chain_id, as_json=args.json)
    return 0 if report.ok else 1


def _print_report(report: VerificationReport, chain_id: int, *, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "chainId": chain_id,
                    "head": report.head,
                    "blocks": report.blocks,
                    "transactions": report.transactions,
                    "stateNodes": report.state_nodes,
                    "discrepancies": [{"block": d.block, "problem": d.problem} for d in report.discrepancies],
                }
            )
        )
        return
    summary = (
        f"{report.blocks:,} blocks, {report.transactions:,} transactions, "
        f"{report.state_nodes:,} state nodes (chain {chain_id}, head {report.head})"
    )
    if report.ok:
        print(f"ledger OK: {summary}")
        return
    print(f"ledger NOT OK: {len(report.discrepancies)} discrepancies; checked {summary}")
    for found in report.discrepancies:
        print(f"  {'state' if found.block is None else f'block {found.block}'}: {found.problem}")
