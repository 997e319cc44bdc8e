"""The root hash of an ordered list's Merkle-Patricia trie (transactions, receipts).

A block's transactions and receipts roots are tries keyed by `rlp(index)`. Building
them with the general-purpose `trie.HexaryTrie` costs more than executing a simple
transfer, so this module builds the same root in one pass over the sorted keys, without
storing nodes (as geth's StackTrie does). Its result is checked against `HexaryTrie` by
property tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import rlp
from eth_hash.auto import keccak

BLANK_ROOT = keccak(rlp.encode(b""))


def _nibbles(key: bytes) -> tuple[int, ...]:
    return tuple(n for byte in key for n in (byte >> 4, byte & 0x0F))


def _hex_prefix(nibbles: Sequence[int], leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        prefixed = [flag + 1, *nibbles]
    else:
        prefixed = [flag, 0, *nibbles]
    return bytes(prefixed[i] << 4 | prefixed[i + 1] for i in range(0, len(prefixed), 2))


def _reference(node: object) -> object:
    """How a parent refers to `node`: inline if its encoding is short, else by hash."""
    encoded = rlp.encode(node)
    return node if len(encoded) < 32 else keccak(encoded)


def _node(items: Sequence[tuple[tuple[int, ...], bytes]], depth: int) -> object:
    if len(items) == 1:
        key, value = items[0]
        return [_hex_prefix(key[depth:], leaf=True), value]
    first, last = items[0][0], items[-1][0]
    shared = 0
    while depth + shared < min(len(first), len(last)) and first[depth + shared] == last[depth + shared]:
        shared += 1
    if shared:
        child = _node(items, depth + shared)
        return [_hex_prefix(first[depth : depth + shared], leaf=False), _reference(child)]
    branch: list[object] = [b""] * 17
    start = 0
    if len(items[0][0]) == depth:
        branch[16] = items[0][1]
        start = 1
    while start < len(items):
        nibble = items[start][0][depth]
        end = start
        while end < len(items) and items[end][0][depth] == nibble:
            end += 1
        branch[nibble] = _reference(_node(items[start:end], depth + 1))
        start = end
    return branch


def ordered_trie_root(values: Sequence[bytes]) -> bytes:
    """The root of the trie mapping `rlp(i)` to `values[i]`."""
    if not values:
        return BLANK_ROOT
    items = sorted((_nibbles(rlp.encode(index)), value) for index, value in enumerate(values))
    return keccak(rlp.encode(_node(items, 0)))
