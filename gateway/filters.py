"""Polled filters (eth_newFilter and its family): a registry of what each client asked to watch.

Rules, as geth applies them:
- a filter id is a random 16-byte quantity (hex without leading zeros);
- a filter not used for `FILTER_TIMEOUT_SECONDS` expires; an unknown or expired id is
  "filter not found";
- at most `MAX_FILTERS` filters exist at once; creating another is refused;
- block and pending-transaction filters queue the hashes they have not yet reported, at
  most `MAX_QUEUED_HASHES` each (the oldest are dropped beyond that);
- a pending-transaction filter installed by a signed-in caller also queues the waiting
  confidential transactions that caller may see, and answers only that caller (to anyone
  else it is "filter not found"); an anonymous one queues public transactions only;
- log filters keep no queue: they remember the last block they reported, and each poll
  reads the logs of the blocks after it from the store.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from evm_runtime.exceptions import ConclaveError
from evm_runtime.types import Address

FILTER_TIMEOUT_SECONDS = 300.0
MAX_FILTERS = 1_000
MAX_QUEUED_HASHES = 10_000
FILTER_ID_BITS = 128


class FilterNotFound(ConclaveError):
    """No filter has this id: it never existed, was uninstalled, or expired."""


class TooManyFilters(ConclaveError):
    """The registry holds its maximum number of filters."""


class FilterKind(Enum):
    LOGS = "logs"
    BLOCKS = "blocks"
    PENDING = "pending"


@dataclass(slots=True)
class Filter:
    """One installed filter. `criteria` and `last_block` are for log filters only."""

    kind: FilterKind
    last_used: float
    hashes: deque[bytes]
    criteria: Any = None
    last_block: int = 0
    viewer: Address | None = None
    """Who installed a pending filter (None: anonymous): the only one it answers."""


@dataclass(frozen=True, slots=True)
class BlockWindow:
    first: int
    last: int


def next_log_window(
    last_reported: int, head: int, lowest: int, highest: int | None, max_blocks: int
) -> BlockWindow | None:
    """The blocks a log filter reports next: after `last_reported`, up to the head, within
    [`lowest`, `highest`] (None: no upper bound), and at most `max_blocks` of them."""
    first = max(last_reported + 1, lowest)
    last = min(head, first + max_blocks - 1)
    if highest is not None:
        last = min(last, highest)
    return BlockWindow(first, last) if first <= last else None


def random_filter_id() -> int:
    """A random nonzero id of `FILTER_ID_BITS` bits."""
    return secrets.randbits(FILTER_ID_BITS) or 1


class FilterRegistry:
    """The installed filters, by id. `clock` is in seconds (monotonic by default)."""

    def __init__(
        self,
        *,
        timeout: float = FILTER_TIMEOUT_SECONDS,
        max_filters: int = MAX_FILTERS,
        max_queued: int = MAX_QUEUED_HASHES,
        clock: Callable[[], float] = time.monotonic,
        new_id: Callable[[], int] = random_filter_id,
    ) -> None:
        self.timeout = timeout
        self.max_filters = max_filters
        self.max_queued = max_queued
        self._clock = clock
        self._new_id = new_id
        self._filters: dict[int, Filter] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._filters)

    def __contains__(self, filter_id: int) -> bool:
        self._expire()
        return filter_id in self._filters

    # -- installing -------------------------------------------------------------------

    def install_logs(self, criteria: Any, head: int) -> int:
        """A log filter reporting the matching logs of blocks after `head`."""
        return self._install(FilterKind.LOGS, criteria=criteria, last_block=head)

    def install_blocks(self) -> int:
        return self._install(FilterKind.BLOCKS)

    def install_pending(self, viewer: Address | None = None) -> int:
        return self._install(FilterKind.PENDING, viewer=viewer)

    def _install(self, kind: FilterKind, **fields: Any) -> int:
        self._expire()
        if len(self._filters) >= self.max_filters:
            raise TooManyFilters(
                f"too many filters: at most {self.max_filters} may exist; uninstall unused ones "
                f"or let them expire ({self.timeout:g} s without polling)"
            )
        filter_id = self._new_id()
        while filter_id in self._filters:
            filter_id = self._new_id()
        self._filters[filter_id] = Filter(kind, self._clock(), deque(maxlen=self.max_queued), **fields)
        return filter_id

    def uninstall(self, filter_id: int) -> bool:
        """Remove the filter; False if there was none with this id."""
        self._expire()
        return self._filters.pop(filter_id, None) is not None

    # -- polling ----------------------------------------------------------------------

    def get(self, filter_id: int, kind: FilterKind | None = None) -> Filter:
        """The filter (of `kind`, if given), its timeout restarted; FilterNotFound otherwise."""
        self._expire()
        found = self._filters.get(filter_id)
        if found is None or (kind is not None and found.kind is not kind):
            raise FilterNotFound("filter not found")
        found.last_used = self._clock()
        return found

    def take_hashes(self, filter_id: int, viewer: Address | None = None) -> list[bytes]:
        """The hashes a block or pending filter queued since it was last polled, for `viewer`
        (who polls); empties the queue."""
        found = self.get(filter_id)
        if found.viewer is not None and found.viewer != viewer:
            raise FilterNotFound("filter not found")
        taken = list(found.hashes)
        found.hashes.clear()
        return taken

    # -- feeding ----------------------------------------------------------------------

    def on_block(self, block_hash: bytes) -> None:
        """A block was committed: queue its hash for every block filter."""
        self._push(FilterKind.BLOCKS, block_hash)

    def on_pending(self, tx_hash: bytes, may_see: Callable[[Address | None], bool] | None = None) -> None:
        """A transaction entered the pool: queue its hash for every pending filter whose
        installer `may_see` it (None: a public transaction, for all)."""
        self._push(FilterKind.PENDING, tx_hash, may_see)

    def _push(
        self, kind: FilterKind, item: bytes, may_see: Callable[[Address | None], bool] | None = None
    ) -> None:
        self._expire()
        for installed in self._filters.values():
            if installed.kind is kind and (may_see is None or may_see(installed.viewer)):
                installed.hashes.append(item)

    def _expire(self) -> None:
        deadline = self._clock() - self.timeout
        expired = [fid for fid, installed in self._filters.items() if installed.last_used <= deadline]
        for filter_id in expired:
            del self._filters[filter_id]
