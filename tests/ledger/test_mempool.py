"""The transaction pool (`ledger.mempool`) against a naive reference model."""

from __future__ import annotations

import itertools
from functools import cache

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from evm_runtime.exceptions import (
    AlreadyKnown,
    InsufficientFunds,
    NonceTooHigh,
    PoolFull,
    ReplacementUnderpriced,
)
from evm_runtime.transactions import DecodedTransaction, max_cost
from ledger.mempool import MAX_NONCE_GAP, REPLACEMENT_BUMP_PERCENT, Mempool
from tests.evm_runtime.chainkit import ACCOUNTS, GWEI, address_of, decoded

RICH = 10**30
"""A balance no test transaction comes near: these tests are about nonces and fees."""

SENDERS = ACCOUNTS[:3]
NONCES = range(6)
MAX_FEES = (100 * GWEI, 109 * GWEI, 110 * GWEI, 130 * GWEI)
TIPS = (10 * GWEI, 11 * GWEI, 20 * GWEI)
FEES = tuple(itertools.product(MAX_FEES, TIPS))


@cache
def tx(sender: int, nonce: int, fee: int = 0) -> DecodedTransaction:
    """A signed transaction; signing is slow, so each one is made once per session."""
    max_fee, tip = FEES[fee]
    return decoded(SENDERS[sender], nonce=nonce, maxFeePerGas=max_fee, maxPriorityFeePerGas=tip)


def _bumped_enough(old: DecodedTransaction, new: DecodedTransaction) -> bool:
    bump = 100 + REPLACEMENT_BUMP_PERCENT
    return (
        new.tx.max_fee_per_gas * 100 >= old.tx.max_fee_per_gas * bump
        and new.tx.max_priority_fee_per_gas * 100 >= old.tx.max_priority_fee_per_gas * bump
    )


def _tip(item: DecodedTransaction, base_fee: int) -> int:
    return min(item.tx.max_priority_fee_per_gas, item.tx.max_fee_per_gas - base_fee)


class PoolAgainstModel(RuleBasedStateMachine):
    """Mempool against a dict (sender, nonce) -> (transaction, arrival)."""

    @initialize(
        max_transactions=st.integers(1, 9),
        max_per_sender=st.integers(1, 5),
    )
    def setup(self, max_transactions: int, max_per_sender: int) -> None:
        self.pool = Mempool(max_transactions=max_transactions, max_per_sender=max_per_sender)
        self.max_transactions = max_transactions
        self.max_per_sender = max_per_sender
        self.model: dict[tuple[bytes, int], tuple[DecodedTransaction, int]] = {}
        self.account_nonces = {address_of(s): 0 for s in SENDERS}
        self.arrivals = itertools.count()

    def _nonce_of(self, sender: bytes) -> int:
        return self.account_nonces[sender]

    def _evictable_for(self, item: DecodedTransaction) -> tuple[bytes, int] | None:
        """The model's rule: another sender's last transaction, cheapest, latest among equals."""
        last: dict[bytes, tuple[bytes, int]] = {}
        for sender, nonce in self.model:
            if sender != item.sender and (sender not in last or nonce > last[sender][1]):
                last[sender] = (sender, nonce)
        if not last:
            return None

        def rank(key: tuple[bytes, int]) -> tuple[int, int, int]:
            waiting, arrival = self.model[key]
            return waiting.tx.max_fee_per_gas, waiting.tx.max_priority_fee_per_gas, -arrival

        victim = min(last.values(), key=rank)
        cheaper = rank(victim)[:2] < (item.tx.max_fee_per_gas, item.tx.max_priority_fee_per_gas)
        return victim if cheaper else None

    def _hashes(self) -> set[bytes]:
        return {item.hash for item, _ in self.model.values()}

    @rule(
        sender=st.integers(0, len(SENDERS) - 1),
        nonce=st.sampled_from(NONCES),
        fee=st.integers(0, len(FEES) - 1),
    )
    def add(self, sender: int, nonce: int, fee: int) -> None:
        item = tx(sender, nonce, fee)
        key = (item.sender, nonce)
        account_nonce = self.account_nonces[item.sender]
        if item.hash in self._hashes():
            expected: type[Exception] | None = AlreadyKnown
        elif key in self.model:
            expected = None if _bumped_enough(self.model[key][0], item) else ReplacementUnderpriced
        elif sum(1 for s, _ in self.model if s == item.sender) >= self.max_per_sender:
            expected = PoolFull
        elif len(self.model) >= self.max_transactions:
            victim = self._evictable_for(item)
            expected = PoolFull if victim is None else None
            if victim is not None:
                del self.model[victim]
        else:
            expected = None
        if expected is None:
            self.pool.add(item, account_nonce, RICH)
            self.model[key] = (item, next(self.arrivals))
        else:
            with pytest.raises(expected):
                self.pool.add(item, account_nonce, RICH)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def replace(self, data: st.DataObject) -> None:
        """A replacement of a waiting transaction, with or without enough of a bump."""
        (sender, nonce) = data.draw(st.sampled_from(sorted(self.model)))
        old, _ = self.model[(sender, nonce)]
        index = next(i for i, s in enumerate(SENDERS) if address_of(s) == sender)
        fee = data.draw(st.integers(0, len(FEES) - 1))
        new = tx(index, nonce, fee)
        if new.hash == old.hash:
            with pytest.raises(AlreadyKnown):
                self.pool.add(new, self.account_nonces[sender], RICH)
        elif _bumped_enough(old, new):
            self.pool.add(new, self.account_nonces[sender], RICH)
            self.model[(sender, nonce)] = (new, next(self.arrivals))
            assert old.hash not in self.pool
        else:
            with pytest.raises(ReplacementUnderpriced, match="at least 10%"):
                self.pool.add(new, self.account_nonces[sender], RICH)
            assert old.hash in self.pool

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        known = sorted(self._hashes())
        unknown = [tx(0, 5, len(FEES) - 1).hash] if tx(0, 5, len(FEES) - 1).hash not in self._hashes() else []
        chosen = data.draw(st.lists(st.sampled_from(known + unknown), max_size=3)) if known + unknown else []
        self.pool.remove(chosen)
        for key, (item, _) in list(self.model.items()):
            if item.hash in chosen:
                del self.model[key]

    @rule(sender=st.sampled_from(SENDERS), step=st.integers(1, 3))
    def advance_account_nonce(self, sender, step: int) -> None:
        """Some of the sender's transactions were included in a block."""
        self.account_nonces[address_of(sender)] += step

    @rule()
    def prune_stale(self) -> None:
        pruned = self.pool.prune_stale(self.account_nonces, self._nonce_of)
        stale = {key for key in self.model if key[1] < self.account_nonces[key[0]]}
        assert sorted(pruned) == sorted(self.model[key][0].hash for key in stale)
        for key in stale:
            del self.model[key]

    # -- invariants --

    def _runs(self) -> dict[bytes, list[DecodedTransaction]]:
        runs = {}
        for sender, account_nonce in self.account_nonces.items():
            run = []
            nonce = account_nonce
            while (sender, nonce) in self.model:
                run.append(self.model[(sender, nonce)][0])
                nonce += 1
            runs[sender] = run
        return runs

    @invariant()
    def same_contents(self) -> None:
        if not hasattr(self, "pool"):
            return
        assert len(self.pool) == len(self.model) <= self.max_transactions
        assert {item.hash for item in self.pool.transactions()} == self._hashes()
        for item, _ in self.model.values():
            assert item.hash in self.pool
            assert self.pool.get(item.hash) is item
        for sender in self.account_nonces:
            assert sum(1 for s, _ in self.model if s == sender) <= self.max_per_sender

    @invariant()
    def committed_cost_is_what_waits(self) -> None:
        if not hasattr(self, "pool"):
            return
        for sender in self.account_nonces:
            waiting = [item for (owner, _), (item, _) in self.model.items() if owner == sender]
            assert self.pool.committed_cost(sender) == sum(max_cost(item.tx) for item in waiting)

    @invariant()
    def ready_is_the_contiguous_runs_from_the_account_nonces(self) -> None:
        if not hasattr(self, "pool"):
            return
        runs = self._runs()
        for base_fee in (0, 105 * GWEI):
            ready = self.pool.ready(self._nonce_of, base_fee)
            for sender, run in runs.items():
                mine = [item for item in ready if item.sender == sender]
                assert [item.hash for item in mine] == [item.hash for item in run]
                assert [item.nonce for item in mine] == list(
                    range(self.account_nonces[sender], self.account_nonces[sender] + len(mine))
                )
            assert len(ready) == sum(len(run) for run in runs.values())

    @invariant()
    def ready_takes_the_highest_tip_first(self) -> None:
        if not hasattr(self, "pool"):
            return
        base_fee = 105 * GWEI
        runs = {sender: list(run) for sender, run in self._runs().items() if run}
        arrival = {item.hash: seq for item, seq in self.model.values()}
        expected = []
        while runs:
            sender = max(runs, key=lambda s: (_tip(runs[s][0], base_fee), -arrival[runs[s][0].hash]))
            expected.append(runs[sender].pop(0).hash)
            if not runs[sender]:
                del runs[sender]
        assert [item.hash for item in self.pool.ready(self._nonce_of, base_fee)] == expected

    @invariant()
    def next_nonce_follows_the_run(self) -> None:
        if not hasattr(self, "pool"):
            return
        for sender, run in self._runs().items():
            account_nonce = self.account_nonces[sender]
            assert self.pool.next_nonce(sender, account_nonce) == account_nonce + len(run)


TestPoolAgainstModel = PoolAgainstModel.TestCase
TestPoolAgainstModel.settings = settings(max_examples=120, stateful_step_count=30, deadline=None)


# -- examples -------------------------------------------------------------------------------


def test_a_duplicate_is_already_known() -> None:
    pool = Mempool()
    pool.add(tx(0, 0), 0, RICH)
    with pytest.raises(AlreadyKnown, match="already known"):
        pool.add(tx(0, 0), 0, RICH)
    assert len(pool) == 1


@pytest.mark.parametrize(
    "old,new,accepted",
    [
        ((100, 10), (110, 11), True),  # exactly +10% on both
        ((100, 10), (130, 20), True),
        ((100, 10), (109, 20), False),  # fee cap +9%
        ((100, 10), (130, 10), False),  # tip unchanged
        ((110, 11), (100, 10), False),  # lower
        ((100, 11), (110, 10), False),
    ],
)
def test_replacement_needs_a_ten_percent_bump_of_cap_and_tip(old, new, accepted: bool) -> None:
    def fee(pair):
        return FEES.index((pair[0] * GWEI, pair[1] * GWEI))

    pool = Mempool()
    pool.add(tx(0, 0, fee(old)), 0, RICH)
    if accepted:
        pool.add(tx(0, 0, fee(new)), 0, RICH)
        assert [item.hash for item in pool.transactions()] == [tx(0, 0, fee(new)).hash]
    else:
        with pytest.raises(ReplacementUnderpriced):
            pool.add(tx(0, 0, fee(new)), 0, RICH)
        assert [item.hash for item in pool.transactions()] == [tx(0, 0, fee(old)).hash]


def test_a_full_pool_refuses_no_better_offer_but_takes_replacements() -> None:
    pool = Mempool(max_transactions=2, max_per_sender=5)
    pool.add(tx(0, 0), 0, RICH)
    pool.add(tx(1, 0), 0, RICH)
    with pytest.raises(PoolFull, match="txpool is full: 2 transactions waiting; offer more than"):
        pool.add(tx(2, 0), 0, RICH)
    pool.add(tx(0, 0, len(FEES) - 1), 0, RICH)
    assert len(pool) == 2


def test_a_full_pool_evicts_the_cheapest_last_transaction_for_a_better_offer() -> None:
    pool = Mempool(max_transactions=3, max_per_sender=5)
    cheap, rich = 0, len(FEES) - 1
    pool.add(tx(0, 0, cheap), 0, RICH)
    pool.add(tx(0, 1, rich), 0, RICH)  # sender 0's last is rich: its cheap first one stays
    pool.add(tx(1, 0, cheap), 0, RICH)
    pool.add(tx(2, 0, rich), 0, RICH)
    assert tx(1, 0, cheap).hash not in pool
    assert {item.hash for item in pool.transactions()} == {
        tx(0, 0, cheap).hash,
        tx(0, 1, rich).hash,
        tx(2, 0, rich).hash,
    }
    assert pool.committed_cost(address_of(SENDERS[1])) == 0


def test_a_sender_cannot_fill_the_pool() -> None:
    pool = Mempool(max_transactions=10, max_per_sender=2)
    pool.add(tx(0, 0), 0, RICH)
    pool.add(tx(0, 1), 0, RICH)
    with pytest.raises(PoolFull, match="for this sender: 2"):
        pool.add(tx(0, 2), 0, RICH)
    pool.add(tx(1, 0), 0, RICH)


def test_a_nonce_too_far_ahead_is_refused() -> None:
    pool = Mempool()
    far = decoded(SENDERS[0], nonce=MAX_NONCE_GAP + 1)
    with pytest.raises(NonceTooHigh, match=f"at most {MAX_NONCE_GAP} ahead"):
        pool.add(far, 0, RICH)
    pool.add(far, 1, RICH)


def test_ready_orders_by_tip_and_keeps_each_senders_nonce_order() -> None:
    pool = Mempool()
    cheap = FEES.index((130 * GWEI, 10 * GWEI))
    rich = FEES.index((130 * GWEI, 20 * GWEI))
    # Sender 0: a cheap transaction, then a rich one that must still come after it.
    pool.add(tx(0, 0, cheap), 0, RICH)
    pool.add(tx(0, 1, rich), 0, RICH)
    pool.add(tx(1, 0, rich), 0, RICH)
    pool.add(tx(2, 1, rich), 0, RICH)  # a gap: not ready
    ready = pool.ready(lambda sender: 0, 0)
    assert [item.hash for item in ready] == [tx(1, 0, rich).hash, tx(0, 0, cheap).hash, tx(0, 1, rich).hash]
    assert pool.next_nonce(address_of(SENDERS[2]), 0) == 0
    assert pool.next_nonce(address_of(SENDERS[0]), 0) == 2


def test_a_refused_sender_is_not_remembered() -> None:
    pool = Mempool(max_transactions=1)
    pool.add(tx(0, 0), 0, RICH)
    with pytest.raises(PoolFull):
        pool.add(tx(1, 0), 0, RICH)
    assert pool.senders() == [address_of(SENDERS[0])]


def test_waiting_transactions_together_cannot_cost_more_than_the_balance() -> None:
    pool = Mempool()
    first, second = tx(0, 0), tx(0, 1)
    balance = max_cost(first.tx) + max_cost(second.tx) - 1
    pool.add(first, 0, balance)
    with pytest.raises(InsufficientFunds, match="already committed by waiting transactions"):
        pool.add(second, 0, balance)
    assert second.hash not in pool
    pool.add(second, 0, balance + 1)
    assert second.hash in pool


def test_by_readiness_splits_each_sender_at_its_first_nonce_gap() -> None:
    pool = Mempool()
    for sender, nonce in [(0, 0), (0, 1), (0, 3), (1, 2), (2, 5), (2, 6)]:
        pool.add(tx(sender, nonce), 0 if sender < 2 else 5, RICH)
    account_nonces = {address_of(SENDERS[0]): 0, address_of(SENDERS[1]): 0, address_of(SENDERS[2]): 5}
    ready, queued = pool.by_readiness(account_nonces.__getitem__)
    a, b, c = (address_of(s) for s in SENDERS)
    assert {sender: list(by_nonce) for sender, by_nonce in ready.items()} == {a: [0, 1], c: [5, 6]}
    assert {sender: list(by_nonce) for sender, by_nonce in queued.items()} == {a: [3], b: [2]}
    assert ready[a][1] == tx(0, 1) and queued[b][2] == tx(1, 2)
    assert sum(map(len, ready.values())) == len(pool.ready(account_nonces.__getitem__, 0))
