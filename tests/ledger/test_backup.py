"""`copy_ledger`: a consistent, complete copy between any two supported databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from enclave.sealed_state import node_ledger_secrets
from enclave.verification import verify_ledger
from evm_runtime.chain import GenesisAccount
from gateway.node import Node, NodeConfig
from ledger.backup import TargetNotEmpty, copy_ledger, row_counts
from ledger.database import make_engine
from ledger.store import LedgerStore
from migrations import upgrade_to_head
from tests.evm_runtime.chainkit import ACCOUNTS, CHAIN_ID, ETHER, address_of, recipient, sign
from tests.support.databases import DATABASES, DatabaseUrls

ALICE = ACCOUNTS[0]


def _chain(url: str, blocks: int, enclave_dir: Path | None = None) -> Node:
    """A node with `blocks` blocks; its enclave keeps its keys (which seal the state) in
    `enclave_dir`, if given."""
    alloc = {address_of(ALICE): GenesisAccount(balance=100 * ETHER)}
    node = Node(NodeConfig(database_url=url, chain_id=CHAIN_ID, genesis_alloc=alloc, enclave_dir=enclave_dir))
    for nonce in range(blocks):
        node.send_raw_transaction(sign(ALICE, nonce=nonce, value=nonce + 1, to=recipient(nonce)))
        node.ordering.seal()
    return node


def _migrated(url: str) -> Engine:
    engine = make_engine(url)
    upgrade_to_head(engine)
    return engine


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return row_counts(conn)


@pytest.mark.parametrize("target_kind", DATABASES)
def test_a_copy_is_the_same_ledger(
    database_url: str, target_kind: str, database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    node = _chain(database_url, blocks=12, enclave_dir=tmp_path / "enclave")
    target = _migrated(database_urls.new(target_kind))
    pages: list[tuple[str, int]] = []
    copied = copy_ledger(node.engine, target, on_rows=lambda table, rows: pages.append((table, rows)))
    assert copied == _counts(node.engine) == _counts(target)
    assert sum(rows for _, rows in pages) == sum(copied.values())
    store = LedgerStore(target)
    assert store.head() == node.store.head()
    assert store.settings() == node.store.settings()
    assert verify_ledger(store, CHAIN_ID, node_ledger_secrets(tmp_path / "enclave")).ok
    store.close()
    target.dispose()
    node.engine.dispose()


def test_a_target_with_a_ledger_is_refused(database_url: str) -> None:
    node = _chain(database_url, blocks=1)
    with pytest.raises(TargetNotEmpty, match="empty one"):
        copy_ledger(node.engine, node.engine)
    node.engine.dispose()


def test_the_copy_is_one_snapshot_while_blocks_are_committed(
    database_url: str, database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    node = _chain(database_url, blocks=30, enclave_dir=tmp_path / "enclave")
    target = _migrated(database_urls.new("sqlite"))
    writing = threading.Event()

    def commit_more() -> None:
        writing.set()
        for nonce in range(30, 60):
            node.send_raw_transaction(sign(ALICE, nonce=nonce, value=1, to=recipient(nonce)))
            node.ordering.seal()

    def on_rows(table: str, rows: int) -> None:
        if not writing.is_set():
            writer.start()
            writer.join()

    writer = threading.Thread(target=commit_more)
    copy_ledger(node.engine, target, on_rows=on_rows)
    store = LedgerStore(target)
    copied_head = store.head()
    assert copied_head is not None and copied_head.number == 30, "the copy mixes two moments"
    assert verify_ledger(store, CHAIN_ID, node_ledger_secrets(tmp_path / "enclave")).ok
    assert node.head.number == 60
    store.close()
    target.dispose()
    node.engine.dispose()
