"""End-to-end: `conclave ledger verify` on a node's data directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.e2e.chain_helpers import Signer, connect, fresh_account, run_conclave
from tests.support.devnode import start_dev_node


def _make_chain(data_dir: Path) -> None:
    node = start_dev_node("--data-dir", str(data_dir))
    try:
        w3 = connect(node)
        alice = Signer(w3, node.accounts[0].key)
        token, _ = alice.deploy("ConclaveToken", "Conclave", "CNV", 10**24)
        alice.call_fn(token.functions.transfer(fresh_account().address, 1234))
        alice.transact(to=fresh_account().address, value=1, gas=21_000)
    finally:
        assert node.stop() == 0


def test_verify_passes_an_honest_ledger_and_names_a_tampered_block(tmp_path: Path) -> None:
    _make_chain(tmp_path)
    honest = run_conclave("ledger", "verify", "--data-dir", str(tmp_path), "--json", timeout=120)
    assert honest.returncode == 0, honest
    report = json.loads(honest.stdout)
    assert report["ok"] and report["head"] >= 3 and report["transactions"] == 3
    assert report["discrepancies"] == []

    readable = run_conclave("ledger", "verify", "--data-dir", str(tmp_path), timeout=120)
    assert readable.returncode == 0 and readable.stdout.startswith("ledger OK: "), readable

    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        db.execute("UPDATE receipts SET status = 1 - status WHERE block_number = 2")
    tampered = run_conclave("ledger", "verify", "--data-dir", str(tmp_path), timeout=120)
    assert tampered.returncode == 1, tampered
    assert "ledger NOT OK" in tampered.stdout
    assert "block 2: the receipt of" in tampered.stdout


def test_verify_without_a_ledger_says_where_it_looked(tmp_path: Path) -> None:
    missing = run_conclave("ledger", "verify", "--data-dir", str(tmp_path / "nothing"))
    assert missing.returncode == 2
    assert "no ledger in" in missing.stderr and "--data-dir" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (tmp_path / "nothing").exists(), "verify must not create a ledger"


def test_ledger_help_teaches() -> None:
    result = run_conclave("ledger", "verify", "--help")
    assert result.returncode == 0
    assert "--database-url" in result.stdout and "exits 0" in result.stdout
