"""`prove_account`: proofs that the trie library verifies against the state root."""

from __future__ import annotations

import rlp
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from evm_runtime.state_proofs import prove_account
from evm_runtime.types import Address
from tests.evm_runtime.chainkit import ACCOUNTS, address_of, decoded, funded_chain


def _check(root: bytes, proof_nodes: tuple[bytes, ...], key: bytes) -> bytes:
    return bytes(HexaryTrie.get_from_proof(root, key, [rlp.decode(node) for node in proof_nodes]))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 2**256 - 1), max_size=5), st.binary(min_size=20, max_size=20))
def test_any_account_and_slots_are_proven(slots: list[int], stranger: bytes) -> None:
    chain = funded_chain()
    chain.build([decoded(ACCOUNTS[0], nonce=0, value=5, to=to_checksum_address(stranger))])
    root = chain.head.state_root
    for address in (address_of(ACCOUNTS[0]), Address(stranger), Address(b"\xee" * 20)):
        proof = prove_account(root, chain.cache, address, slots)
        encoded = _check(root, proof.proof, keccak(address))
        if encoded:
            nonce, balance, storage_root, code_hash = rlp.decode(encoded)
            assert int.from_bytes(balance, "big") == proof.balance
            assert bytes(storage_root) == proof.storage_root and bytes(code_hash) == proof.code_hash
        else:
            assert proof.balance == 0 and proof.nonce == 0
        for entry in proof.storage:
            assert _check(proof.storage_root, entry.proof, keccak(entry.slot.to_bytes(32, "big"))) == b""
            assert entry.value == 0


def test_a_sender_is_proven_with_its_new_nonce() -> None:
    chain = funded_chain()
    chain.build([decoded(ACCOUNTS[1], nonce=0, value=1, to=to_checksum_address(b"\x11" * 20))])
    proof = prove_account(chain.head.state_root, chain.cache, address_of(ACCOUNTS[1]), [])
    assert proof.nonce == 1 and proof.proof
