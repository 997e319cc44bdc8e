"""End-to-end: `conclave ledger verify`, `export` and `import` on a node's ledger."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.e2e.chain_helpers import Signer, connect, fresh_account, run_conclave
from tests.support.databases import DatabaseUrls
from tests.support.devnode import DevNode, start_dev_node


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


def test_export_then_import_into_postgresql_gives_the_same_verified_chain(
    tmp_path: Path, database_urls: DatabaseUrls
) -> None:
    _make_chain(tmp_path / "node")
    backup = tmp_path / "backup.sqlite"
    exported = run_conclave("ledger", "export", str(backup), "--data-dir", str(tmp_path / "node"), "--json")
    assert exported.returncode == 0, exported
    rows = json.loads(exported.stdout)["rows"]
    assert rows["blocks"] >= 4 and rows["transactions"] == 3 and rows["state_nodes"] > 0

    again = run_conclave("ledger", "export", str(backup), "--data-dir", str(tmp_path / "node"))
    assert again.returncode == 2 and "exists" in again.stderr

    target = database_urls.new("postgresql")
    restored = tmp_path / "restored"
    unverifiable = run_conclave(
        "ledger", "import", str(backup), "--database-url", target, "--data-dir", str(restored)
    )
    assert unverifiable.returncode == 2 and "no ledger secrets in" in unverifiable.stderr, unverifiable
    assert not restored.exists()

    # A backup is restored together with the node's enclave directory: its keys seal the state.
    shutil.copytree(tmp_path / "node" / "enclave", restored / "enclave")
    imported = run_conclave(
        "ledger", "import", str(backup), "--database-url", target, "--data-dir", str(restored), timeout=120
    )
    assert imported.returncode == 0, imported
    assert "verified: ledger OK" in imported.stdout

    twice = run_conclave(
        "ledger", "import", str(backup), "--database-url", target, "--data-dir", str(restored)
    )
    assert twice.returncode == 2 and "already holds a ledger" in twice.stderr

    node = start_dev_node("--database-url", target, "--data-dir", str(restored))
    try:
        original = start_dev_node("--data-dir", str(tmp_path / "node"))
        try:
            head = original.result("eth_getBlockByNumber", ["latest", True])
            assert node.result("eth_getBlockByNumber", ["latest", True]) == head
        finally:
            original.stop()
        assert continue_chain_ok(node)
    finally:
        node.stop()


def continue_chain_ok(node: DevNode) -> bool:
    w3 = connect(node)
    receipt = Signer(w3, node.accounts[1].key).transact(to=fresh_account().address, value=1, gas=21_000)
    return bool(receipt["status"] == 1)


def test_import_of_a_missing_file_says_so(tmp_path: Path) -> None:
    result = run_conclave(
        "ledger", "import", str(tmp_path / "none.sqlite"), "--data-dir", str(tmp_path / "n")
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
