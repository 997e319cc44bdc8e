"""`ordered_trie_root` against the general-purpose trie it replaces."""

import rlp
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from evm_runtime.trie_root import BLANK_ROOT, ordered_trie_root


def reference_root(values: list[bytes]) -> bytes:
    trie = HexaryTrie({})
    for index, value in enumerate(values):
        trie[rlp.encode(index)] = value
    return trie.root_hash


def test_empty_list_has_the_blank_root() -> None:
    assert ordered_trie_root([]) == BLANK_ROOT == reference_root([])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=120), max_size=300))
def test_matches_hexary_trie(values: list[bytes]) -> None:
    assert ordered_trie_root(values) == reference_root(values)


def test_matches_hexary_trie_across_key_length_boundaries() -> None:
    # rlp(index) changes length at 0x80 and 0x100: the shapes of the trie change there.
    for count in (127, 128, 129, 255, 256, 257, 1000):
        values = [index.to_bytes(4, "big") * 9 for index in range(count)]
        assert ordered_trie_root(values) == reference_root(values), count
