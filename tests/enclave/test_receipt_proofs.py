"""The enclave's part of receipts anyone can verify: the proofs it makes cross the process
boundary as they are, and governance's state is proven from a block's state root."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_hash.auto import keccak

from enclave.messages import decode, encode
from evm_runtime.chain import decode_header
from evm_runtime.receipt_proofs import proven_storage, verify_index
from evm_runtime.system_contracts import BLOB_SLOT
from evm_runtime.types import Hash32
from gateway.node import Node
from governance.codec import decode_state
from governance.system_contract import GOVERNANCE_ADDRESS
from tests.gateway.inprocess import ALICE, BOB, call, make_node


@pytest.fixture
def dev_chain() -> Iterator[Node]:
    node = make_node(dev_mode=True)
    yield node
    node.engine.dispose()


def test_a_transaction_proof_proves_into_the_stored_header_and_crosses_unchanged(dev_chain: Node) -> None:
    sent = [
        call(dev_chain, "eth_sendTransaction", {"from": ALICE.address, "to": BOB.address, "value": "0x1"})
        for _ in range(3)
    ]
    dev_chain.ordering.seal()
    for index, tx_hash in enumerate(sent):
        proof = dev_chain.enclave.transaction_proof(Hash32(bytes.fromhex(tx_hash[2:])))
        assert proof is not None and proof.index == index and decode(encode(proof)) == proof
        header = decode_header(proof.header)
        assert keccak(proof.header) == proof.block_hash == dev_chain.store.block_by_number(1).hash  # type: ignore[union-attr]
        verify_index(header.transaction_root, index, proof.transaction, proof.transaction_proof)
        verify_index(header.receipt_root, index, proof.receipt, proof.receipt_proof)
    assert dev_chain.enclave.transaction_proof(Hash32(b"\x5a" * 32)) is None


def test_governances_state_is_proven_from_the_state_root(dev_chain: Node) -> None:
    proof = dev_chain.enclave.governance_proof(0)
    assert proof is not None and decode(encode(proof)) == proof
    state_root = decode_header(dev_chain.store.block_by_number(0).header).state_root  # type: ignore[union-attr]
    digest = proven_storage(
        state_root, GOVERNANCE_ADDRESS, BLOB_SLOT, proof.account_proof, proof.storage_proof
    )
    assert digest.to_bytes(32, "big") == keccak(proof.state)
    assert set(decode_state(proof.state).validators) == set(dev_chain.enclave.validators(0))


def test_without_governance_there_is_no_governance_proof() -> None:
    node = make_node()
    try:
        assert node.enclave.governance_proof(0) is None
    finally:
        node.engine.dispose()
