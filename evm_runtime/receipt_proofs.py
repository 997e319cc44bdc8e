"""Merkle proofs of one entry of a block's transactions or receipts trie, and of a key in any trie.

A block's transactions and receipts roots are the roots of tries mapping `rlp(index)` to
the transaction's EIP-2718 encoding and to its receipt's (`trie_root`). The proof of an
index is the RLP encodings of the trie nodes on the path from the root to that key, root
first, as `trie.HexaryTrie.get_proof` finds them. Every value is at least 32 bytes, so no
leaf is inlined into its parent: a proof shows the other entries only as the hashes of
the subtries that hold them.

A proof is accepted only if it is *exactly* the path: the nodes, looked up by their
keccak from the root, lead to the key, and proving the key again on them gives back the
same nodes in the same order (no node more, none less, none encoded otherwise). So any
changed byte of a proof makes it fail.

Account and storage proofs (EIP-1186, `state_proofs`) are checked the same way, keyed by
keccak(address) and keccak(slot).
"""

from __future__ import annotations

from collections.abc import Sequence

import rlp
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.exceptions import MissingTrieNode, ValidationError

from .types import Address

MAX_PROOF_NODES = 64
"""More nodes than any path of a 32-byte key has (64 nibbles)."""


class InvalidProof(ValueError):
    """A Merkle proof that does not prove what it claims."""


def ordered_trie(values: Sequence[bytes]) -> HexaryTrie:
    """The trie mapping `rlp(i)` to `values[i]`, in memory (its root is `ordered_trie_root`'s)."""
    trie = HexaryTrie({})
    with trie.squash_changes() as batch:
        for index, value in enumerate(values):
            batch[rlp.encode(index)] = value
    return trie


def prove_key(trie: HexaryTrie, key: bytes) -> tuple[bytes, ...]:
    """The encoded nodes on the path from `trie`'s root to `key`, root first."""
    return tuple(rlp.encode(node) for node in trie.get_proof(key))


def prove_index(values: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """The proof of `values[index]` in the ordered trie of `values`."""
    if not 0 <= index < len(values):
        raise IndexError(f"index {index} is not one of {len(values)} values")
    return prove_key(ordered_trie(values), rlp.encode(index))


def proven_value(root: bytes, key: bytes, proof: Sequence[bytes]) -> bytes:
    """The value `proof` proves `key` has in the trie with root `root` (b"" if it proves the
    key absent); InvalidProof unless `proof` is exactly the path to `key`."""
    if not proof or len(proof) > MAX_PROOF_NODES or not all(isinstance(node, bytes) for node in proof):
        raise InvalidProof(f"a proof is 1 to {MAX_PROOF_NODES} encoded trie nodes")
    nodes = {keccak(node): node for node in proof}
    trie = HexaryTrie(nodes, root_hash=root)
    try:
        value = trie.get(key)
        path = prove_key(trie, key)
    except MissingTrieNode as missing:
        raise InvalidProof(f"the proof lacks the trie node 0x{missing.missing_node_hash.hex()}") from None
    except (rlp.DecodingError, ValidationError, ValueError, TypeError, IndexError) as malformed:
        raise InvalidProof(f"a proof node is not a trie node: {malformed}") from None
    if path != tuple(proof):
        raise InvalidProof("the proof holds other nodes than the path to its key")
    return bytes(value)


def verify_index(root: bytes, index: int, value: bytes, proof: Sequence[bytes]) -> None:
    """Check that `proof` shows `value` at `rlp(index)` of the ordered trie with root `root`."""
    if index < 0 or not value:
        raise InvalidProof("an entry is a non-empty value at a non-negative index")
    if proven_value(root, rlp.encode(index), proof) != value:
        raise InvalidProof(f"the proof does not hold this value at index {index}")


def proven_storage(
    state_root: bytes,
    address: Address,
    slot: int,
    account_proof: Sequence[bytes],
    storage_proof: Sequence[bytes],
) -> int:
    """The value of `slot` of `address` that the two proofs (EIP-1186) show in the state
    with root `state_root`; 0 for a slot (or account) they prove absent."""
    encoded = proven_value(state_root, keccak(address), account_proof)
    if not encoded:
        return 0
    try:
        account = rlp.decode(encoded, sedes=Account)
    except (rlp.DecodingError, rlp.DeserializationError) as malformed:
        raise InvalidProof(f"the proven account does not decode: {malformed}") from None
    stored = proven_value(account.storage_root, keccak(slot.to_bytes(32, "big")), storage_proof)
    if not stored:
        return 0
    try:
        value = rlp.decode(stored)
    except rlp.DecodingError as malformed:
        raise InvalidProof(f"the proven storage value does not decode: {malformed}") from None
    if not isinstance(value, bytes):
        raise InvalidProof("the proven storage value is not a word")
    return int.from_bytes(value, "big")
