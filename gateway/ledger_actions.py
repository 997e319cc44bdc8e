"""What `conclave ledger verify|export|import` do (`gateway.ledger_cli` defines the commands).

The ledger's state is stored sealed with the ledger secrets of the node's enclave
(`enclave.sealed_state`): verifying unseals it with those kept in the node's enclave
directory, `DATA_DIR/enclave`, opened as the enclave itself opens them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sqlalchemy import Engine
from tqdm import tqdm

from enclave.keystore import KeystoreLocked
from enclave.sealed_state import (
    OLDER_LEDGER,
    STATE_SEALING_FORMAT,
    STATE_SEALING_SETTING,
    LedgerSecretsMissing,
    SealedStateUnreadable,
    node_ledger_secrets,
)
from enclave.sealing import LedgerSecrets
from enclave.verification import VerificationReport, check_ledger_secrets, verify_ledger
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


class _Refused(Exception):
    """The ledger cannot be checked as asked: the message says why and what to do."""


def _ledger_secrets(args: argparse.Namespace, default_data_dir: Path) -> LedgerSecrets:
    """The ledger secrets of the node whose data directory is named (or the default one)."""
    enclave_dir = (args.data_dir or default_data_dir) / "enclave"
    try:
        return node_ledger_secrets(enclave_dir)
    except (LedgerSecretsMissing, KeystoreLocked) as exc:
        raise _Refused(str(exc)) from None


def _check_sealed(store: LedgerStore, secrets: LedgerSecrets) -> None:
    """Refuse a ledger of an older format, or one these secrets did not seal."""
    if store.settings().get(STATE_SEALING_SETTING) != STATE_SEALING_FORMAT:
        raise _Refused(OLDER_LEDGER)
    try:
        check_ledger_secrets(store, secrets)
    except SealedStateUnreadable as exc:
        raise _Refused(str(exc)) from None


def _verify(store: LedgerStore, chain_id: int, secrets: LedgerSecrets) -> VerificationReport:
    with _progress("verifying", "block") as bar:

        def progress(number: int, head: int) -> None:
            bar.total = head + 1
            bar.update(1)

        return verify_ledger(store, chain_id, secrets, on_block=progress)


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
        secrets = _ledger_secrets(args, default_data_dir)
        _check_sealed(store, secrets)
        report = _verify(store, chain_id, secrets)
    except _Refused as exc:
        return _fail(str(exc))
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
    try:
        secrets = None if args.no_verify else _ledger_secrets(args, default_data_dir)
    except _Refused as exc:
        return _fail(f"{exc} (or import with --no-verify)")
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
        backup = LedgerStore(source)
        if _chain_id(backup) is None:
            return _fail(f"{args.file} holds no Conclave ledger")
        if secrets is not None:
            _check_sealed(backup, secrets)  # before anything is written
        upgrade_to_head(target)
        copied = _copy(source, target, "importing")
        store = LedgerStore(target)
        chain_id = _chain_id(store)
        assert chain_id is not None
        report = None if secrets is None else _verify(store, chain_id, secrets)
        store.close()
    except (TargetNotEmpty, _Refused) as exc:
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
