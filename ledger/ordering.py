"""The ordering service: turns waiting transactions into committed blocks.

With one validator the order is decided locally: as soon as transactions are ready and
no more have arrived for a moment (or every `block_time` seconds, if set) the ready ones
are handed to the executor as one batch, and the block it returns is stored in one
database transaction. The consensus protocol for several validators plugs in at the
same place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from evm_runtime.transactions import DecodedTransaction
from evm_runtime.types import Address

from .mempool import Mempool
from .store import BlockRecord, LedgerStore

log = logging.getLogger(__name__)

GATHER_TICK_SECONDS = 0.002
MAX_GATHER_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """A block made from a batch, and the transactions the state refused."""

    block: BlockRecord
    dropped: tuple[tuple[DecodedTransaction, str], ...] = ()


class BlockExecutor(Protocol):
    """What the ordering service needs from execution (the enclave implements it)."""

    def account_nonces(self, addresses: Sequence[Address]) -> list[int]: ...

    def next_base_fee(self) -> int: ...

    def execute(self, batch: Sequence[DecodedTransaction], timestamp: int) -> ExecutionResult: ...

    def committed(self, block: BlockRecord) -> None: ...


class SoloOrdering:
    """Single-validator ordering: seal all ready transactions into the next block."""

    def __init__(
        self,
        store: LedgerStore,
        pool: Mempool,
        executor: BlockExecutor,
        *,
        block_time: float | None = None,
        on_block: Callable[[BlockRecord], None] = lambda block: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._pool = pool
        self._executor = executor
        self._block_time = block_time
        self._on_block = on_block
        self._clock = clock
        self._wake = asyncio.Event()
        self.time_offset = 0
        """Seconds added to the clock for block timestamps (dev chains travel in time)."""
        self.next_timestamp: int | None = None
        """The timestamp of the next block only, if set (dev chains)."""
        self.min_interval = 0.0
        """Seconds that must pass between two blocks (the network's block time; 0: none)."""
        self._last_sealed = 0.0

    def notify(self) -> None:
        """A transaction was admitted: seal soon (unless blocks are timed)."""
        self._wake.set()

    def _nonces_of(self, senders: Sequence[Address]) -> Callable[[Address], int]:
        """The latest nonces of `senders`, asked of the executor in one call."""
        return dict(zip(senders, self._executor.account_nonces(senders), strict=True)).__getitem__

    def _timestamp(self) -> int:
        """The next block's time: the clock plus the offset, or `next_timestamp` once set,
        from which later blocks then go on (the offset moves to it, as on Hardhat; never
        behind the clock)."""
        now = int(self._clock())
        if self.next_timestamp is not None:
            timestamp, self.next_timestamp = self.next_timestamp, None
            self.time_offset = max(timestamp - now, 0)
            return timestamp
        return now + self.time_offset

    def seal(self, *, allow_empty: bool = False) -> BlockRecord | None:
        """Seal the ready transactions into one block; None if there was nothing to seal."""
        batch = self._pool.ready(self._nonces_of(self._pool.senders()), self._executor.next_base_fee())
        if not batch and not allow_empty:
            return None
        result = self._executor.execute(batch, self._timestamp())
        for decoded, reason in result.dropped:
            log.info("dropped transaction %s: %s", decoded.hash.hex(), reason)
        self._pool.remove(decoded.hash for decoded, _ in result.dropped)
        touched = [tx.sender for tx in result.block.transactions]
        touched += [decoded.sender for decoded, _ in result.dropped]
        return self._commit(result.block, touched)

    def seal_made(self, make: Callable[[int], ExecutionResult], touched: Sequence[Address]) -> BlockRecord:
        """Seal the block `make(timestamp)` returns instead of a batch of the pool (a dev
        chain's state patch); waiting transactions of `touched` accounts whose nonce is used
        are dropped."""
        return self._commit(make(self._timestamp()).block, touched)

    def _commit(self, block: BlockRecord, touched: Sequence[Address]) -> BlockRecord:
        self._last_sealed = time.monotonic()
        self._store.append_block(block)
        self._executor.committed(block)
        self._pool.remove(tx.hash for tx in block.transactions)
        senders = list(dict.fromkeys(touched))
        self._pool.prune_stale(senders, self._nonces_of(senders))
        self._on_block(block)
        return block

    async def _gather(self) -> None:
        """Wait while transactions keep arriving, up to `MAX_GATHER_SECONDS`.

        A lone transaction is sealed after one quiet tick; a stream of them is gathered
        into one block, so the per-block costs (state root, commit) are shared.
        """
        deadline = time.monotonic() + MAX_GATHER_SECONDS
        seen = len(self._pool)
        while time.monotonic() < deadline:
            await asyncio.sleep(GATHER_TICK_SECONDS)
            if len(self._pool) == seen:
                return
            seen = len(self._pool)

    async def run(self) -> None:
        """Seal blocks until cancelled."""
        while True:
            if self._block_time is None:
                await self._wake.wait()
                await self._gather()
                self._wake.clear()
                while True:
                    wait = self._last_sealed + self.min_interval - time.monotonic()
                    if wait > 0:  # the network's block time has not passed since the last block
                        await asyncio.sleep(wait)
                    if self.seal() is None:
                        break
                    await asyncio.sleep(0)
            else:
                await asyncio.sleep(self._block_time)
                self.seal(allow_empty=True)
