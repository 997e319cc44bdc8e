"""`verify_ledger` re-derives every stored block; any tampering is found and named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth._utils.address import generate_contract_address
from eth_utils import to_checksum_address
from sqlalchemy import text

from enclave.sealed_state import SealedStateUnreadable, node_ledger_secrets, seal_node
from enclave.sealing import LedgerSecrets
from enclave.verification import VerificationReport, verify_ledger
from evm_runtime.chain import GenesisAccount, decode_header
from gateway.node import Node, NodeConfig
from governance.state import GovernanceState, Member
from tests.evm_runtime.chainkit import ACCOUNTS, CHAIN_ID, ETHER, address_of, calldata, recipient, sign
from tests.support.artifacts import load_artifact

ALICE, BOB = ACCOUNTS[:2]


@pytest.fixture
def node(database_url: str, tmp_path: Path) -> Iterator[Node]:
    """A node whose chain holds transfers, a contract, its events and a child contract; its
    enclave keeps its keys in `tmp_path / "enclave"`."""
    alloc = {address_of(account): GenesisAccount(balance=100 * ETHER) for account in (ALICE, BOB)}
    node = Node(
        NodeConfig(
            database_url=database_url,
            chain_id=CHAIN_ID,
            genesis_alloc=alloc,
            enclave_dir=tmp_path / "enclave",
        )
    )
    probe = bytes.fromhex(load_artifact("Probe")["bytecode"][2:])
    batches = [
        [
            sign(ALICE, nonce=0, data=probe, to=None, gas=3_000_000),
            sign(BOB, nonce=0, value=5, to=recipient(1)),
        ],
        [sign(ALICE, nonce=1, to=_probe(), data=calldata("emitMany(uint256)", 3), gas=200_000)],
        [
            sign(
                ALICE, nonce=2, to=_probe(), data=calldata("spawnChild(uint256)", 2), gas=1_000_000, value=7
            ),
            sign(BOB, nonce=1, to=_probe(), data=calldata("fail()"), gas=100_000),
        ],
    ]
    for batch in batches:
        for raw in batch:
            node.send_raw_transaction(raw)
        node.ordering.seal()
    node.ordering.seal(allow_empty=True)
    yield node
    node.store.close()
    node.engine.dispose()


def _probe() -> str:
    return to_checksum_address(generate_contract_address(address_of(ALICE), 0))


def _tamper(node: Node, statement: str, **params: object) -> None:
    with node.engine.begin() as conn:
        conn.execute(text(statement), params)


def _secrets(node: Node) -> LedgerSecrets:
    """The node's ledger secrets, as `conclave ledger verify` opens them."""
    assert node.config.enclave_dir is not None
    return node_ledger_secrets(node.config.enclave_dir)


def _verify(node: Node, chain_id: int = CHAIN_ID) -> VerificationReport:
    return verify_ledger(node.store, chain_id, _secrets(node))


def test_an_honest_ledger_verifies(node: Node) -> None:
    progress: list[tuple[int, int]] = []
    report = verify_ledger(
        node.store, CHAIN_ID, _secrets(node), on_block=lambda number, head: progress.append((number, head))
    )
    assert report.discrepancies == []
    assert report.ok
    assert (report.head, report.blocks, report.transactions) == (4, 5, 5)
    assert report.state_nodes > 10
    assert progress == [(n, 4) for n in range(5)]


def test_another_chain_id_does_not_verify(node: Node) -> None:
    report = _verify(node, CHAIN_ID + 1)
    assert not report.ok
    assert "does not decode" in report.discrepancies[0].problem


def test_a_changed_receipt_is_found(node: Node) -> None:
    _tamper(node, "UPDATE receipts SET gas_used = gas_used + 1 WHERE block_number = 2")
    [found] = _verify(node).discrepancies
    assert found.block == 2 and "receipt" in found.problem


def test_a_changed_log_is_found(node: Node) -> None:
    _tamper(node, "UPDATE logs SET data = :data WHERE block_number = 2 AND log_index = 1", data=b"forged")
    [found] = _verify(node).discrepancies
    assert found.block == 2 and "logs" in found.problem


def test_a_changed_transaction_is_found(node: Node) -> None:
    raw = sign(BOB, nonce=0, value=500, to=recipient(1))
    _tamper(
        node,
        "UPDATE transactions SET raw = :raw WHERE block_number = 1 AND transaction_index = 1",
        raw=raw,
    )
    problems = [d.problem for d in _verify(node).discrepancies if d.block == 1]
    assert any("transactions root" in p for p in problems)
    assert any("replay gives another block" in p for p in problems)


def _state_root(node: Node, number: int) -> bytes:
    block = node.store.block_by_number(number)
    assert block is not None
    return bytes(decode_header(block.header).state_root)


def test_a_changed_state_node_is_found(node: Node) -> None:
    root = _state_root(node, 3)
    _tamper(node, "UPDATE state_nodes SET value = :value WHERE key = :key", value=b"\xc0", key=root)
    [found] = _verify(node).discrepancies
    assert found.block is None
    assert found.problem == f"state node {root.hex()} does not unseal with the node's ledger secrets"


def test_a_node_sealed_for_its_key_that_does_not_hash_to_it_is_found(node: Node) -> None:
    root = _state_root(node, 3)
    forged = seal_node(_secrets(node), root, b"\xc0")
    _tamper(node, "UPDATE state_nodes SET value = :value WHERE key = :key", value=forged, key=root)
    [found] = _verify(node).discrepancies
    assert found.block is None
    assert found.problem == f"state node {root.hex()} does not hash to its key"


def test_a_state_node_moved_under_another_key_stops_the_replay(node: Node) -> None:
    genesis_root, other_root = _state_root(node, 0), _state_root(node, 2)
    _tamper(
        node,
        "UPDATE state_nodes SET value = (SELECT value FROM state_nodes WHERE key = :other) WHERE key = :key",
        other=other_root,
        key=genesis_root,
    )
    found = _verify(node).discrepancies
    assert (found[0].block, found[0].problem.startswith("the stored state cannot be read")) == (0, True)
    assert f"state node {genesis_root.hex()} does not unseal" in found[-1].problem


def test_other_ledger_secrets_verify_nothing(node: Node) -> None:
    with pytest.raises(SealedStateUnreadable, match="not the secrets of the enclave that sealed"):
        verify_ledger(node.store, CHAIN_ID, LedgerSecrets.create())


def test_a_missing_block_is_found(node: Node) -> None:
    _tamper(node, "DELETE FROM logs WHERE block_number = 3")
    _tamper(node, "DELETE FROM receipts WHERE block_number = 3")
    _tamper(node, "DELETE FROM transactions WHERE block_number = 3")
    _tamper(node, "DELETE FROM block_certificates WHERE block_number = 3")
    _tamper(node, "DELETE FROM blocks WHERE number = 3")
    [found] = _verify(node).discrepancies
    assert found.block == 3 and "missing" in found.problem


def test_a_rewritten_header_is_found(node: Node) -> None:
    earlier = node.store.block_by_number(1)
    assert earlier is not None
    _tamper(node, "UPDATE blocks SET header = :header WHERE number = 2", header=earlier.header)
    problems = [d.problem for d in _verify(node).discrepancies]
    assert any("hash to the stored block hash" in p for p in problems)


def test_commit_certificates_are_checked_against_the_validators(database_url: str, tmp_path: Path) -> None:
    node = Node(
        NodeConfig(
            database_url=database_url,
            chain_id=CHAIN_ID,
            genesis_alloc={address_of(ALICE): GenesisAccount(balance=100 * ETHER)},
            enclave_dir=tmp_path / "enclave",
            genesis_governance=GovernanceState(members={address_of(ALICE): Member("alice")}),
        )
    )
    try:
        for nonce in range(2):
            node.send_raw_transaction(sign(ALICE, nonce=nonce, value=1))
            assert node.ordering.seal() is not None
        report = verify_ledger(node.store, CHAIN_ID, _secrets(node))
        assert report.ok and report.certified == 2
        first = node.store.certificate(1)
        _tamper(node, "UPDATE block_certificates SET certificate = :c WHERE block_number = 2", c=first)
        [found] = verify_ledger(node.store, CHAIN_ID, _secrets(node)).discrepancies
        assert found.block == 2 and "not a quorum" in found.problem
    finally:
        node.store.close()
        node.engine.dispose()
