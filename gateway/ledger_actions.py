"""What `conclave ledger verify|export|import` do (`gateway.ledger_cli` defines the commands)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sqlalchemy import Engine
from tqdm import tqdm

from enclave.verification import VerificationReport, verify_ledger
from ledger.backup import TargetNotEmpty, copy_ledger, row_counts
from ledger.database import make_engine
from ledger.store import LedgerStore
from migrations import upgrade_to_head


def _database_url(args: argparse.Namespace, default_data_dir: Path) -> str | None:
    if args.database_url:
        return str(args.database_url)
    path = (args.data_dir or default_data_dir) / "ledger.sqlite"
    return f"sqlite:///{path}" if path.is_file() else None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _progress(desc: str, unit: str, total: int | None = None) -> tqdm:  # type: ignore[type-arg]
    return tqdm(desc=desc, unit=unit, total=total, disable=not sys.stderr.isatty(), file=sys.stderr)


def _chain_id(store: LedgerStore) -> int | None:
    chain_id = store.settings().get("chain_id")
    return None if chain_id is None else int(chain_id)


def _verify(store: LedgerStore, chain_id: int) -> VerificationReport:
    with _progress("verifying", "block") as bar:

        def progress(number: int, head: int) -> None:
            bar.total = head + 1
            bar.update(1)

        return verify_ledger(store, chain_id, on_block=progress)


def run_verify(args: argparse.Namespace, default_data_dir: Path) -> int:
    url = _database_url(args, default_data_dir)
    if url is None:
        where = args.data_dir or default_data_dir
        return _fail(f"no ledger in {where}: pass the node's --data-dir or --database-url")
    engine = make_engine(url)
    store = LedgerStore(engine)
    try:
        chain_id = _chain_id(store)
        if chain_id is None:
            return _fail("the database holds no Conclave ledger (no chain settings)")
        report = _verify(store, chain_id)
    finally:
        store.close()
        engine.dispose()
    _print_report(report, chain_id, as_json=args.json)
    return 0 if report.ok else 1


def _copy(source: Engine, target: Engine, desc: str) -> dict[str, int]:
    with source.connect() as conn:
        total = sum(row_counts(conn).values())
    with _progress(desc, "row", total) as bar:
        return copy_ledger(source, target, on_rows=lambda table, rows: bar.update(rows))


def run_export(args: argparse.Namespace, default_data_dir: Path) -> int:
    url = _database_url(args, default_data_dir)
    if url is None:
        return _fail(f"no ledger in {args.data_dir or default_data_dir}: pass --data-dir or --database-url")
    if args.file.exists():
        return _fail(f"{args.file} exists: export writes a new file")
    source = make_engine(url)
    target = make_engine(f"sqlite:///{args.file}")
    try:
        upgrade_to_head(target)
        copied = _copy(source, target, "exporting")
    except BaseException:
        target.dispose()
        args.file.unlink(missing_ok=True)
        raise
    finally:
        source.dispose()
        target.dispose()
    _print_copy(copied, f"exported to {args.file}", as_json=args.json)
    return 0


def run_import(args: argparse.Namespace, default_data_dir: Path) -> int:
    if not args.file.is_file():
        return _fail(f"{args.file} does not exist: pass a file written by `conclave ledger export`")
    if args.database_url:
        url = str(args.database_url)
    else:
        data_dir = args.data_dir or default_data_dir
        if (data_dir / "ledger.sqlite").exists():
            return _fail(f"{data_dir} already holds a ledger: import into a new --data-dir")
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{data_dir / 'ledger.sqlite'}"
    source = make_engine(f"sqlite:///{args.file}")
    target = make_engine(url)
    try:
        if _chain_id(LedgerStore(source)) is None:
            return _fail(f"{args.file} holds no Conclave ledger")
        upgrade_to_head(target)
        copied = _copy(source, target, "importing")
        store = LedgerStore(target)
        chain_id = _chain_id(store)
        assert chain_id is not None
        report = None if args.no_verify else _verify(store, chain_id)
        store.close()
    except TargetNotEmpty as exc:
        return _fail(str(exc))
    finally:
        source.dispose()
        target.dispose()
    _print_copy(copied, "imported", as_json=args.json, report=report)
    return 0 if report is None or report.ok else 1


def _print_copy(
    copied: dict[str, int], done: str, *, as_json: bool, report: VerificationReport | None = None
) -> None:
    if as_json:
        print(json.dumps({"rows": copied, "verified": None if report is None else report.ok}))
        return
    print(f"{done}: " + ", ".join(f"{rows:,} {table}" for table, rows in copied.items()))
    if report is not None:
        print("verified: ledger OK" if report.ok else "verification FAILED: run `conclave ledger verify`")


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
