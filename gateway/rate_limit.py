"""Per-client rate limiting: a token bucket per client address.

A client may make `requests_per_second` JSON-RPC requests a second on average and
`burst` at once (a batch counts each of its requests). The buckets of at most
`max_clients` clients are remembered; the least recently seen is forgotten first, so no
number of clients can grow memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests_per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")


class ClientRateLimiter:
    """Token buckets by client; `admit` says whether a request of some cost may go now."""

    def __init__(
        self, limit: RateLimit, *, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def admit(self, client: str, cost: int = 1) -> float | None:
        """None if `client` may spend `cost` now (and it is spent); else seconds until it may."""
        now = self._clock()
        tokens, last = self._buckets.pop(client, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - last) * self.limit.requests_per_second)
        wait = None
        if cost > self.limit.burst:
            wait = float("inf")
        elif tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / self.limit.requests_per_second
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
