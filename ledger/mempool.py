"""The pool of transactions waiting for a block.

Rules, as Ethereum nodes apply them:
- per sender, transactions are ordered by nonce; a transaction is *ready* when every
  lower nonce down to the account's nonce is ready or included; later ones wait (*queued*)
  until the gap is filled;
- a transaction with the nonce of one already waiting replaces it only if it raises both
  the fee cap and the tip by at least `REPLACEMENT_BUMP_PERCENT`;
- all of a sender's waiting transactions, a new one included, must together cost no more
  than the sender's balance (gas * max fee + value each);
- the pool is bounded in total and per sender. When it is full, a new transaction evicts
  the cheapest one that can go without leaving a nonce gap (another sender's last waiting
  transaction with the lowest fee cap), if it offers a higher fee cap; otherwise it is
  refused;
- a block takes ready transactions by highest tip first, nonce order kept per sender,
  arrival order breaking ties.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from evm_runtime.exceptions import (
    AlreadyKnown,
    InsufficientFunds,
    NonceTooHigh,
    PoolFull,
    ReplacementUnderpriced,
)
from evm_runtime.transactions import DecodedTransaction, max_cost
from evm_runtime.types import Address

REPLACEMENT_BUMP_PERCENT = 10
DEFAULT_MAX_TRANSACTIONS = 10_000
DEFAULT_MAX_PER_SENDER = 1_000
MAX_NONCE_GAP = 1_000


@dataclass(order=True, slots=True)
class _Entry:
    seq: int
    decoded: DecodedTransaction = field(compare=False)


def _tip(decoded: DecodedTransaction, base_fee: int) -> int:
    tx = decoded.tx
    return min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee)


class Mempool:
    """Waiting transactions, by sender and nonce."""

    def __init__(
        self,
        max_transactions: int = DEFAULT_MAX_TRANSACTIONS,
        max_per_sender: int = DEFAULT_MAX_PER_SENDER,
    ) -> None:
        self.max_transactions = max_transactions
        self.max_per_sender = max_per_sender
        self._by_sender: dict[Address, dict[int, _Entry]] = {}
        self._by_hash: dict[bytes, _Entry] = {}
        self._cost_by_sender: dict[Address, int] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> DecodedTransaction | None:
        entry = self._by_hash.get(tx_hash)
        return entry.decoded if entry else None

    def add(self, decoded: DecodedTransaction, account_nonce: int, balance: int) -> None:
        """Admit `decoded`; `account_nonce` and `balance` are its sender's in the latest state."""
        if decoded.hash in self._by_hash:
            raise AlreadyKnown("already known: this transaction is waiting in the pool")
        nonce = decoded.nonce
        if nonce > account_nonce + MAX_NONCE_GAP:
            raise NonceTooHigh(
                f"nonce too high: account nonce {account_nonce}, tx nonce {nonce}; "
                f"at most {MAX_NONCE_GAP} ahead may wait"
            )
        waiting = self._by_sender.get(decoded.sender, {})
        previous = waiting.get(nonce)
        if previous is not None:
            _check_replacement(previous.decoded, decoded)
        elif len(waiting) >= self.max_per_sender:
            raise PoolFull(f"txpool is full for this sender: {self.max_per_sender} transactions waiting")
        committed = self.committed_cost(decoded.sender)
        if previous is not None:
            committed -= max_cost(previous.decoded.tx)
        cost = max_cost(decoded.tx)
        if committed + cost > balance:
            raise InsufficientFunds(
                f"insufficient funds for gas * price + value: balance {balance}, tx cost {cost}, "
                f"already committed by waiting transactions {committed}"
            )
        if previous is None and len(self._by_hash) >= self.max_transactions:
            self.remove([self._evictable_for(decoded).hash])
        if previous is not None:
            del self._by_hash[previous.decoded.hash]
        entry = _Entry(next(self._seq), decoded)
        waiting[nonce] = entry
        self._by_sender[decoded.sender] = waiting
        self._by_hash[decoded.hash] = entry
        self._cost_by_sender[decoded.sender] = committed + cost

    def _evictable_for(self, newcomer: DecodedTransaction) -> DecodedTransaction:
        """The transaction a full pool drops for `newcomer`; PoolFull if none is cheaper.

        Candidates are the other senders' last waiting transactions; the one with the
        lowest (fee cap, tip) goes, the latest arrival among equals.
        """
        candidates = (
            waiting[max(waiting)] for sender, waiting in self._by_sender.items() if sender != newcomer.sender
        )
        cheapest = min(candidates, key=lambda entry: (_price(entry.decoded), -entry.seq), default=None)
        if cheapest is None or _price(cheapest.decoded) >= _price(newcomer):
            floor = "" if cheapest is None else f"; offer more than {_price(cheapest.decoded)} (fee cap, tip)"
            raise PoolFull(f"txpool is full: {self.max_transactions} transactions waiting{floor}")
        return cheapest.decoded

    def committed_cost(self, sender: Address) -> int:
        """What the sender's waiting transactions could cost it, all together."""
        return self._cost_by_sender.get(sender, 0)

    def next_nonce(self, sender: Address, account_nonce: int) -> int:
        """The nonce after the sender's ready transactions (the 'pending' nonce)."""
        waiting = self._by_sender.get(sender, {})
        nonce = account_nonce
        while nonce in waiting:
            nonce += 1
        return nonce

    def ready(self, account_nonce: Callable[[Address], int], base_fee: int) -> list[DecodedTransaction]:
        """Every ready transaction, in the order a block should take them."""
        chains: list[list[_Entry]] = []
        for sender, waiting in self._by_sender.items():
            nonce = account_nonce(sender)
            chain = []
            while nonce in waiting:
                chain.append(waiting[nonce])
                nonce += 1
            if chain:
                chains.append(chain)
        heap = [(-_tip(c[0].decoded, base_fee), c[0].seq, i, 0) for i, c in enumerate(chains)]
        heapq.heapify(heap)
        ordered: list[DecodedTransaction] = []
        while heap:
            _, _, chain_index, position = heapq.heappop(heap)
            chain = chains[chain_index]
            ordered.append(chain[position].decoded)
            if position + 1 < len(chain):
                following = chain[position + 1]
                heapq.heappush(
                    heap,
                    (-_tip(following.decoded, base_fee), following.seq, chain_index, position + 1),
                )
        return ordered

    def remove(self, hashes: Iterable[bytes]) -> None:
        for tx_hash in hashes:
            entry = self._by_hash.pop(tx_hash, None)
            if entry is None:
                continue
            sender = entry.decoded.sender
            waiting = self._by_sender[sender]
            del waiting[entry.decoded.nonce]
            self._cost_by_sender[sender] -= max_cost(entry.decoded.tx)
            if not waiting:
                del self._by_sender[sender]
                del self._cost_by_sender[sender]

    def prune_stale(self, senders: Iterable[Address], account_nonce: Callable[[Address], int]) -> list[bytes]:
        """Drop `senders`' transactions whose nonce the chain has used; return their hashes."""
        stale = []
        for sender in set(senders):
            waiting = self._by_sender.get(sender, {})
            current = account_nonce(sender)
            stale += [entry.decoded.hash for nonce, entry in waiting.items() if nonce < current]
        self.remove(stale)
        return stale

    def by_readiness(
        self, account_nonce: Callable[[Address], int]
    ) -> tuple[dict[Address, dict[int, DecodedTransaction]], dict[Address, dict[int, DecodedTransaction]]]:
        """(ready, queued) transactions by sender and nonce, nonces ascending.

        Ready: the sender's run of consecutive nonces from its account nonce on; queued: the
        rest (nonces after a gap).
        """
        ready: dict[Address, dict[int, DecodedTransaction]] = {}
        queued: dict[Address, dict[int, DecodedTransaction]] = {}
        for sender, waiting in self._by_sender.items():
            current = account_nonce(sender)
            first_missing = self.next_nonce(sender, current)
            for nonce in sorted(waiting):
                group = ready if current <= nonce < first_missing else queued
                group.setdefault(sender, {})[nonce] = waiting[nonce].decoded
        return ready, queued

    def clear(self) -> None:
        """Forget every waiting transaction."""
        self._by_sender.clear()
        self._by_hash.clear()
        self._cost_by_sender.clear()

    def senders(self) -> list[Address]:
        return list(self._by_sender)

    def transactions(self) -> list[DecodedTransaction]:
        return [entry.decoded for entry in sorted(self._by_hash.values())]


def _price(decoded: DecodedTransaction) -> tuple[int, int]:
    return decoded.tx.max_fee_per_gas, decoded.tx.max_priority_fee_per_gas


def _check_replacement(old: DecodedTransaction, new: DecodedTransaction) -> None:
    bump = 100 + REPLACEMENT_BUMP_PERCENT
    old_tx, new_tx = old.tx, new.tx
    if (
        new_tx.max_fee_per_gas * 100 < old_tx.max_fee_per_gas * bump
        or new_tx.max_priority_fee_per_gas * 100 < old_tx.max_priority_fee_per_gas * bump
    ):
        raise ReplacementUnderpriced(
            "replacement transaction underpriced: raise both the fee cap and the tip by "
            f"at least {REPLACEMENT_BUMP_PERCENT}% over the waiting transaction"
        )
