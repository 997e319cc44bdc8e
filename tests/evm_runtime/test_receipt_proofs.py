"""Merkle proofs of a block's transactions and receipts tries, and of storage slots
(`evm_runtime.receipt_proofs`): every index's proof verifies against the root the block
builder computes, and a proof verifies only as exactly the path it was made as."""

from __future__ import annotations

import pytest
import rlp
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from evm_runtime.receipt_proofs import (
    InvalidProof,
    ordered_trie,
    prove_index,
    prove_key,
    proven_storage,
    proven_value,
    verify_index,
)
from evm_runtime.trie_root import ordered_trie_root
from evm_runtime.types import Address

# Transactions and receipts are at least 32 bytes (a signature alone is 65).
entries = st.lists(st.binary(min_size=32, max_size=140), min_size=1, max_size=300)


def flipped(value: bytes, position: int, mask: int = 0x01) -> bytes:
    return value[:position] + bytes([value[position] ^ mask]) + value[position + 1 :]


@settings(max_examples=60, deadline=None)
@given(values=entries)
def test_the_proof_of_every_index_verifies_against_the_blocks_root(values: list[bytes]) -> None:
    root = ordered_trie_root(values)
    assert ordered_trie(values).root_hash == root
    for index, value in enumerate(values):
        verify_index(root, index, value, prove_index(values, index))


@settings(max_examples=60, deadline=None)
@given(values=entries, data=st.data())
def test_any_changed_byte_of_a_proof_or_value_fails(values: list[bytes], data: st.DataObject) -> None:
    root = ordered_trie_root(values)
    index = data.draw(st.integers(0, len(values) - 1), label="index")
    proof = prove_index(values, index)
    value = values[index]
    mask = data.draw(st.integers(1, 255), label="mask")
    node = data.draw(st.integers(0, len(proof) - 1), label="node")
    position = data.draw(st.integers(0, len(proof[node]) - 1), label="position")
    tampered = (*proof[:node], flipped(proof[node], position, mask), *proof[node + 1 :])
    with pytest.raises(InvalidProof):
        verify_index(root, index, value, tampered)
    with pytest.raises(InvalidProof):
        verify_index(root, index, flipped(value, data.draw(st.integers(0, len(value) - 1)), mask), proof)


def test_every_byte_of_every_node_matters() -> None:
    values = [keccak(bytes([i])) * 2 for i in range(200)]
    root = ordered_trie_root(values)
    for index in (0, 1, 127, 128, 199):
        proof = prove_index(values, index)
        for node in range(len(proof)):
            for position in range(len(proof[node])):
                tampered = (*proof[:node], flipped(proof[node], position), *proof[node + 1 :])
                with pytest.raises(InvalidProof):
                    verify_index(root, index, values[index], tampered)


def test_a_proof_is_exactly_the_path() -> None:
    values = [keccak(bytes([i])) * 2 for i in range(40)]
    root = ordered_trie_root(values)
    proof = prove_index(values, 7)
    other = prove_index(values, 30)
    with pytest.raises(InvalidProof, match="lacks"):
        verify_index(root, 7, values[7], proof[:-1])
    with pytest.raises(InvalidProof, match="other nodes"):
        verify_index(root, 7, values[7], (*proof, other[-1]))
    with pytest.raises(InvalidProof, match="other nodes"):
        verify_index(root, 7, values[7], tuple(reversed(proof)))
    with pytest.raises(InvalidProof):
        verify_index(root, 8, values[7], proof)  # another index
    with pytest.raises(InvalidProof):
        verify_index(root, 7, values[8], proof)  # another value
    with pytest.raises(InvalidProof):
        verify_index(keccak(b"another root"), 7, values[7], proof)
    with pytest.raises(InvalidProof):
        verify_index(root, 7, values[7], ())
    with pytest.raises(InvalidProof):
        verify_index(root, -1, values[7], proof)


def test_an_absent_index_proves_no_value() -> None:
    values = [keccak(bytes([i])) * 2 for i in range(5)]
    trie = ordered_trie(values)
    absent = prove_key(trie, rlp.encode(9))
    assert proven_value(trie.root_hash, rlp.encode(9), absent) == b""
    with pytest.raises(InvalidProof):  # an entry is never empty: absence proves nothing
        verify_index(trie.root_hash, 9, b"", absent)


def test_a_lone_entry_is_proven_by_the_root_alone() -> None:
    values = [b"\x02" + keccak(b"one") * 3]
    proof = prove_index(values, 0)
    assert len(proof) == 1 and keccak(proof[0]) == ordered_trie_root(values)
    verify_index(ordered_trie_root(values), 0, values[0], proof)


def _state_with(address: Address, slots: dict[int, int]) -> tuple[HexaryTrie, HexaryTrie]:
    storage = HexaryTrie({})
    for slot, value in slots.items():
        storage[keccak(slot.to_bytes(32, "big"))] = rlp.encode(value)
    state = HexaryTrie({})
    state[keccak(address)] = rlp.encode(Account(1, 5, storage.root_hash, keccak(b"\xfe")))
    state[keccak(b"\x01" * 20)] = rlp.encode(Account(0, 9, storage.root_hash, keccak(b"")))
    return state, storage


@settings(max_examples=40, deadline=None)
@given(slots=st.dictionaries(st.integers(0, 2**256 - 1), st.integers(1, 2**256 - 1), min_size=1, max_size=20))
def test_storage_proofs_verify_and_prove_absent_slots_zero(slots: dict[int, int]) -> None:
    address = Address(b"\x0c" * 20)
    state, storage = _state_with(address, slots)
    account_proof = prove_key(state, keccak(address))
    for slot, value in slots.items():
        key = keccak(slot.to_bytes(32, "big"))
        assert proven_storage(state.root_hash, address, slot, account_proof, prove_key(storage, key)) == value
    absent = next(slot for slot in range(len(slots) + 1) if slot not in slots)
    proof = prove_key(storage, keccak(absent.to_bytes(32, "big")))
    assert proven_storage(state.root_hash, address, absent, account_proof, proof) == 0


def test_a_changed_storage_proof_fails() -> None:
    address = Address(b"\x0c" * 20)
    state, storage = _state_with(address, {0: 0xABCDEF, 1: 2})
    account_proof = prove_key(state, keccak(address))
    storage_proof = prove_key(storage, keccak((0).to_bytes(32, "big")))
    for node in range(len(account_proof)):
        for position in range(0, len(account_proof[node]), 3):
            tampered = (
                *account_proof[:node],
                flipped(account_proof[node], position),
                *account_proof[node + 1 :],
            )
            with pytest.raises(InvalidProof):
                proven_storage(state.root_hash, address, 0, tampered, storage_proof)
    for position in range(len(storage_proof[-1])):
        tampered = (*storage_proof[:-1], flipped(storage_proof[-1], position))
        with pytest.raises(InvalidProof):
            proven_storage(state.root_hash, address, 0, account_proof, tampered)
    with pytest.raises(InvalidProof):  # the proof of slot 0 is not the proof of slot 1
        proven_storage(state.root_hash, address, 1, account_proof, storage_proof)
