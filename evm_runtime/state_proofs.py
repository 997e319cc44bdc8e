"""Merkle proofs of an account and its storage slots against a state root (EIP-1186).

The account proof is the RLP-encoded trie nodes on the path from the state root to
keccak(address); each storage proof is the path from the account's storage root to
keccak(slot as 32 bytes). A proof of an absent account or slot is the path that shows
the key is not there, with the empty account's fields (nonce 0, balance 0, the empty
code hash and the empty storage root) or the value 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from trie import HexaryTrie

from .state_db import NodeCache, StateOverlay
from .types import Address

MAX_PROOF_SLOTS = 1_024


@dataclass(frozen=True, slots=True)
class StorageProof:
    slot: int
    value: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class AccountProof:
    address: Address
    nonce: int
    balance: int
    code_hash: bytes
    storage_root: bytes
    proof: tuple[bytes, ...]
    storage: tuple[StorageProof, ...]


def _path(trie: HexaryTrie, key: bytes) -> tuple[bytes, ...]:
    return tuple(rlp.encode(node) for node in trie.get_proof(key))


def prove_account(
    state_root: bytes, cache: NodeCache, address: Address, slots: Sequence[int]
) -> AccountProof:
    """The proof of `address` and of each of `slots` in the state with root `state_root`."""
    nodes = StateOverlay(cache)
    state = HexaryTrie(nodes, root_hash=state_root)
    account_key = keccak(address)
    encoded = state.get(account_key)
    account = rlp.decode(encoded, sedes=Account) if encoded else Account(0, 0, BLANK_ROOT_HASH, EMPTY_SHA3)
    storage = HexaryTrie(nodes, root_hash=account.storage_root)
    storage_proofs = []
    for slot in slots:
        slot_key = keccak(slot.to_bytes(32, "big"))
        stored = storage.get(slot_key)
        value = int.from_bytes(rlp.decode(stored), "big") if stored else 0
        storage_proofs.append(StorageProof(slot, value, _path(storage, slot_key)))
    return AccountProof(
        address=address,
        nonce=account.nonce,
        balance=account.balance,
        code_hash=account.code_hash,
        storage_root=account.storage_root,
        proof=_path(state, account_key),
        storage=tuple(storage_proofs),
    )
