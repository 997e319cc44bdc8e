"""The state database adapter between py-evm and storage.

py-evm keeps the world state as a Merkle-Patricia trie in a key-value database: trie nodes
keyed by their hash, contract code keyed by its hash. Keys are content hashes, so a value
never changes once written and can be cached without invalidation.

`NodeCache` is shared by a node for its lifetime: a bounded LRU in front of a `NodeSource`
(the ledger's table of state nodes). `StateOverlay` is made per block or per call: py-evm
reads through it and writes into it, and the writes stay in memory until the ledger stores
them with the block, in the same database transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Protocol

from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB

DEFAULT_CACHE_ENTRIES = 200_000


class NodeSource(Protocol):
    """Where state nodes are stored durably."""

    def get_node(self, key: bytes) -> bytes | None:
        """Return the value stored under `key`, or None."""


class NodeCache:
    """A bounded LRU of state nodes in front of a `NodeSource`, safe to share between threads
    (an enclave executes a block on one while it answers reads on another)."""

    def __init__(self, source: NodeSource, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self._source = source
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
                return value
        value = self._source.get_node(key)  # outside the lock: nodes never change
        if value is not None:
            with self._lock:
                self._remember(key, value)
        return value

    def absorb(self, nodes: Mapping[bytes, bytes]) -> None:
        """Remember nodes that have just been stored."""
        with self._lock:
            for key, value in nodes.items():
                self._remember(key, value)

    def _remember(self, key: bytes, value: bytes) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class _OverlayDB(BaseDB):
    """Reads fall through to the cache; writes stay in `pending`."""

    def __init__(self, cache: NodeCache) -> None:
        self._cache = cache
        self.pending: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self.pending.get(key)
        if value is None:
            value = self._cache.get(key)
            if value is None:
                raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.pending[key] = value

    def _exists(self, key: bytes) -> bool:
        return key in self.pending or self._cache.get(key) is not None

    def __delitem__(self, key: bytes) -> None:
        # Content-addressed nodes are never deleted: older blocks' states stay readable.
        self.pending.pop(key, None)

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("the state database cannot be enumerated")

    def __len__(self) -> int:
        raise NotImplementedError("the state database cannot be counted")


class StateOverlay(AtomicDB):
    """A py-evm atomic database whose writes are collected, not stored."""

    def __init__(self, cache: NodeCache) -> None:
        self._overlay = _OverlayDB(cache)
        super().__init__(self._overlay)

    @property
    def writes(self) -> dict[bytes, bytes]:
        """The nodes written so far: what must be stored with the block."""
        return self._overlay.pending
