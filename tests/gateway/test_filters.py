"""The registry of polled filters (`gateway.filters`)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evm_runtime.types import Address
from gateway.filters import (
    FILTER_TIMEOUT_SECONDS,
    MAX_FILTERS,
    MAX_QUEUED_HASHES,
    BlockWindow,
    FilterKind,
    FilterNotFound,
    FilterRegistry,
    TooManyFilters,
    next_log_window,
    random_filter_id,
)
from gateway.hexcodec import quantity

UINT = re.compile(r"0x(0|[1-9a-f][0-9a-f]*)")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def h(index: int) -> bytes:
    return index.to_bytes(32, "big")


def test_the_defaults_are_geths() -> None:
    registry = FilterRegistry()
    assert registry.timeout == FILTER_TIMEOUT_SECONDS == 300
    assert registry.max_filters == MAX_FILTERS
    assert registry.max_queued == MAX_QUEUED_HASHES


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_ids_are_spec_quantities_of_at_most_16_bytes(seed: int) -> None:
    registry = FilterRegistry(new_id=lambda: seed or 1)
    filter_id = registry.install_blocks()
    assert 0 < filter_id < 2**128
    assert UINT.fullmatch(quantity(filter_id))


def test_random_ids_differ_and_fit_16_bytes() -> None:
    ids = {random_filter_id() for _ in range(1_000)}
    assert len(ids) == 1_000
    assert all(0 < filter_id < 2**128 for filter_id in ids)


def test_an_id_collision_draws_again() -> None:
    drawn = iter([7, 7, 7, 9])
    registry = FilterRegistry(new_id=lambda: next(drawn))
    assert registry.install_blocks() == 7
    assert registry.install_pending() == 9


def test_block_and_pending_filters_report_each_hash_once() -> None:
    registry = FilterRegistry()
    blocks, pending = registry.install_blocks(), registry.install_pending()
    registry.on_block(h(1))
    registry.on_pending(h(2))
    registry.on_block(h(3))
    assert registry.take_hashes(blocks) == [h(1), h(3)]
    assert registry.take_hashes(pending) == [h(2)]
    assert registry.take_hashes(blocks) == [] and registry.take_hashes(pending) == []


def test_a_pending_filter_gets_the_confidential_hashes_its_installer_may_see_and_answers_only_it() -> None:
    party, outsider = Address(b"\x01" * 20), Address(b"\x02" * 20)
    registry = FilterRegistry()
    mine, theirs, anonymous = (registry.install_pending(viewer) for viewer in (party, outsider, None))
    registry.on_pending(h(1))
    registry.on_pending(h(2), lambda viewer: viewer == party)
    assert registry.take_hashes(mine, party) == [h(1), h(2)]
    assert registry.take_hashes(theirs, outsider) == [h(1)] and registry.take_hashes(anonymous) == [h(1)]
    for intruder in (outsider, None):
        with pytest.raises(FilterNotFound):
            registry.take_hashes(mine, intruder)


def test_a_filter_sees_only_what_came_after_it() -> None:
    registry = FilterRegistry()
    registry.on_block(h(1))
    blocks = registry.install_blocks()
    registry.on_block(h(2))
    assert registry.take_hashes(blocks) == [h(2)]


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=120))
def test_queues_keep_the_newest_hashes(bound: int, pushed: int) -> None:
    registry = FilterRegistry(max_queued=bound)
    blocks = registry.install_blocks()
    for index in range(pushed):
        registry.on_block(h(index))
    assert registry.take_hashes(blocks) == [h(i) for i in range(max(0, pushed - bound), pushed)]
    registry.on_block(h(pushed))
    assert registry.take_hashes(blocks) == [h(pushed)]


def test_unpolled_filters_expire_and_polling_keeps_them() -> None:
    clock = FakeClock()
    registry = FilterRegistry(clock=clock, timeout=60)
    kept, left = registry.install_blocks(), registry.install_logs(object(), head=5)
    clock.now += 59
    registry.take_hashes(kept)
    clock.now += 59
    assert kept in registry and left not in registry
    with pytest.raises(FilterNotFound, match="^filter not found$"):
        registry.get(left)
    clock.now += 60
    with pytest.raises(FilterNotFound):
        registry.take_hashes(kept)
    assert len(registry) == 0


def test_the_filter_limit_counts_live_filters_only() -> None:
    clock = FakeClock()
    registry = FilterRegistry(clock=clock, timeout=10, max_filters=3)
    first = registry.install_blocks()
    registry.install_pending()
    clock.now += 5
    registry.install_logs(object(), head=0)
    with pytest.raises(TooManyFilters, match="at most 3"):
        registry.install_blocks()
    assert registry.uninstall(first)
    registry.install_blocks()
    clock.now += 6  # the pending filter from the start expires, making room for one
    registry.install_blocks()
    assert len(registry) == 3
    with pytest.raises(TooManyFilters):
        registry.install_pending()


def test_uninstall_answers_whether_there_was_a_filter() -> None:
    registry = FilterRegistry()
    filter_id = registry.install_pending()
    assert registry.uninstall(filter_id) is True
    assert registry.uninstall(filter_id) is False
    assert registry.uninstall(12345) is False
    with pytest.raises(FilterNotFound):
        registry.take_hashes(filter_id)


def test_get_checks_the_kind_when_asked() -> None:
    registry = FilterRegistry()
    logs, blocks = registry.install_logs("criteria", head=4), registry.install_blocks()
    found = registry.get(logs, FilterKind.LOGS)
    assert (found.criteria, found.last_block) == ("criteria", 4)
    with pytest.raises(FilterNotFound):
        registry.get(blocks, FilterKind.LOGS)


@pytest.mark.parametrize(
    ("last_reported", "head", "lowest", "highest", "max_blocks", "window"),
    [
        (5, 5, 0, None, 100, None),  # nothing new
        (5, 8, 0, None, 100, BlockWindow(6, 8)),
        (5, 8, 7, None, 100, BlockWindow(7, 8)),  # fromBlock ahead of the cursor
        (5, 8, 10, None, 100, None),  # fromBlock not reached yet
        (5, 8, 0, 6, 100, BlockWindow(6, 6)),  # toBlock cuts the window
        (5, 8, 0, 4, 100, None),  # toBlock already passed
        (5, 500, 0, None, 100, BlockWindow(6, 105)),  # at most max_blocks per poll
    ],
)
def test_next_log_window(
    last_reported: int,
    head: int,
    lowest: int,
    highest: int | None,
    max_blocks: int,
    window: BlockWindow | None,
) -> None:
    assert next_log_window(last_reported, head, lowest, highest, max_blocks) == window


@given(
    st.integers(0, 50),
    st.integers(0, 100),
    st.integers(0, 100),
    st.none() | st.integers(0, 100),
    st.integers(1, 20),
)
def test_polling_windows_cover_each_admitted_block_once(
    start: int, head: int, lowest: int, highest: int | None, max_blocks: int
) -> None:
    """Polling until no window is left reports exactly the admitted blocks after the start."""
    reported: list[int] = []
    cursor = start
    while (window := next_log_window(cursor, head, lowest, highest, max_blocks)) is not None:
        assert window.last - window.first < max_blocks
        reported += range(window.first, window.last + 1)
        cursor = window.last
    top = head if highest is None else min(head, highest)
    assert reported == list(range(max(start + 1, lowest), top + 1))
