"""The state database adapter: `NodeCache` (bounded LRU) and `StateOverlay` (collected writes)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from evm_runtime.chain import ChainParams, GenesisAccount, make_genesis
from evm_runtime.state_db import NodeCache, StateOverlay

from .chainkit import DictSource

KEYS = [bytes([i]) * 32 for i in range(12)]


def test_reads_fall_through_to_the_source_once() -> None:
    source = DictSource({KEYS[0]: b"zero"})
    cache = NodeCache(source, max_entries=4)
    assert cache.get(KEYS[0]) == b"zero"
    assert cache.get(KEYS[0]) == b"zero"
    assert source.reads == [KEYS[0]]
    assert len(cache) == 1


def test_missing_keys_are_not_cached() -> None:
    source = DictSource()
    cache = NodeCache(source, max_entries=4)
    assert cache.get(KEYS[1]) is None
    assert cache.get(KEYS[1]) is None
    assert source.reads == [KEYS[1], KEYS[1]]
    assert len(cache) == 0
    source[KEYS[1]] = b"later"
    assert cache.get(KEYS[1]) == b"later"


def test_the_least_recently_used_entry_goes_first() -> None:
    source = DictSource({key: key[:1] for key in KEYS})
    cache = NodeCache(source, max_entries=2)
    cache.get(KEYS[0])
    cache.get(KEYS[1])
    cache.get(KEYS[0])  # KEYS[1] is now the least recently used
    cache.get(KEYS[2])
    assert len(cache) == 2
    source.reads.clear()
    cache.get(KEYS[0])
    cache.get(KEYS[2])
    assert source.reads == []
    cache.get(KEYS[1])
    assert source.reads == [KEYS[1]]


def test_absorbed_nodes_are_served_without_the_source() -> None:
    source = DictSource()
    cache = NodeCache(source, max_entries=3)
    cache.absorb({KEYS[0]: b"a", KEYS[1]: b"b"})
    assert cache.get(KEYS[0]) == b"a"
    assert source.reads == []
    cache.absorb({key: b"x" for key in KEYS[2:8]})
    assert len(cache) == 3


def test_an_empty_value_is_a_value() -> None:
    source = DictSource({KEYS[0]: b""})
    cache = NodeCache(source, max_entries=2)
    assert cache.get(KEYS[0]) == b""
    assert cache.get(KEYS[0]) == b""


class CacheAgainstModel(RuleBasedStateMachine):
    """NodeCache against an OrderedDict LRU: same contents, same source reads, bounded size."""

    @initialize(max_entries=st.integers(0, 5))
    def setup(self, max_entries: int) -> None:
        self.source = DictSource({key: b"v" + key[:1] for key in KEYS[:8]})
        self.cache = NodeCache(self.source, max_entries=max_entries)
        self.max_entries = max_entries
        self.model: OrderedDict[bytes, bytes] = OrderedDict()

    def _remember(self, key: bytes, value: bytes) -> None:
        self.model[key] = value
        self.model.move_to_end(key)
        while len(self.model) > self.max_entries:
            self.model.popitem(last=False)

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: bytes) -> None:
        reads = len(self.source.reads)
        value = self.cache.get(key)
        if key in self.model:
            assert value == self.model[key]
            assert len(self.source.reads) == reads
            self.model.move_to_end(key)
        else:
            assert self.source.reads[reads:] == [key]
            assert value == self.source.get(key)
            if value is not None:
                self._remember(key, value)

    @rule(keys=st.lists(st.sampled_from(KEYS), max_size=4), value=st.binary(min_size=1, max_size=3))
    def absorb(self, keys: list[bytes], value: bytes) -> None:
        self.cache.absorb({key: value for key in keys})
        for key in dict.fromkeys(keys):
            self._remember(key, value)

    @invariant()
    def bounded(self) -> None:
        if hasattr(self, "cache"):
            assert len(self.cache) <= self.max_entries
            assert len(self.cache) == len(self.model)


TestCacheAgainstModel = CacheAgainstModel.TestCase
TestCacheAgainstModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


# -- StateOverlay ----------------------------------------------------------------------------


def test_the_overlay_collects_writes_and_leaves_the_source_alone() -> None:
    source = DictSource({KEYS[0]: b"stored"})
    overlay = StateOverlay(NodeCache(source))
    overlay[KEYS[1]] = b"new"
    assert overlay[KEYS[1]] == b"new"
    assert overlay[KEYS[0]] == b"stored"
    assert overlay.writes == {KEYS[1]: b"new"}
    assert dict(source) == {KEYS[0]: b"stored"}
    assert KEYS[0] in overlay and KEYS[1] in overlay and KEYS[2] not in overlay
    with pytest.raises(KeyError):
        overlay[KEYS[2]]


def test_deleting_through_the_overlay_never_deletes_stored_nodes() -> None:
    source = DictSource({KEYS[0]: b"stored"})
    overlay = StateOverlay(NodeCache(source))
    overlay[KEYS[1]] = b"new"
    del overlay[KEYS[1]]
    del overlay[KEYS[0]]
    assert overlay.writes == {}
    assert dict(source) == {KEYS[0]: b"stored"}
    assert overlay[KEYS[0]] == b"stored"


def test_batched_writes_land_in_the_overlay() -> None:
    source = DictSource()
    overlay = StateOverlay(NodeCache(source))
    with overlay.atomic_batch() as batch:
        batch[KEYS[3]] = b"batched"
    assert overlay.writes == {KEYS[3]: b"batched"}
    assert dict(source) == {}


def test_two_overlays_on_one_cache_do_not_see_each_other() -> None:
    cache = NodeCache(DictSource())
    first, second = StateOverlay(cache), StateOverlay(cache)
    first[KEYS[4]] = b"first"
    assert KEYS[4] not in second
    assert second.writes == {}


def test_the_overlay_cannot_be_enumerated() -> None:
    overlay = StateOverlay(NodeCache(DictSource()))
    with pytest.raises(NotImplementedError):
        list(overlay._overlay)
    with pytest.raises(NotImplementedError):
        len(overlay._overlay)


@settings(max_examples=10, deadline=None)
@given(balances=st.lists(st.integers(1, 2**200), min_size=1, max_size=4))
def test_a_genesis_state_is_written_only_to_its_overlay(balances: list[int]) -> None:
    source = DictSource()
    cache = NodeCache(source)
    alloc = {bytes([i + 1]) * 20: GenesisAccount(balance=b) for i, b in enumerate(balances)}
    genesis = make_genesis(ChainParams(), alloc, cache)
    assert dict(source) == {}
    assert genesis.state_writes
    assert genesis.header.state_root in genesis.state_writes
