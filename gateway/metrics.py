"""The node's metrics in Prometheus form, one registry a node.

Labels are bounded: the method label takes only names of served methods (the dispatcher
passes None for anything else, counted as "unknown"), and the error label takes JSON-RPC
codes, so no client can grow the number of series.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNKNOWN_METHOD = "unknown"
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class NodeMetrics:
    """Counters, gauges and histograms of one node."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._rpc_seconds = Histogram(
            "conclave_rpc_request_seconds",
            "Time to answer one JSON-RPC request, by method.",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=self.registry,
        )
        self._rpc_errors = Counter(
            "conclave_rpc_errors",
            "JSON-RPC requests answered with an error, by method and code.",
            ["method", "code"],
            registry=self.registry,
        )
        self._enclave_seconds = Histogram(
            "conclave_enclave_call_seconds",
            "Round-trip time of a call to the enclave process, by call.",
            ["call"],
            buckets=RPC_BUCKETS,
            registry=self.registry,
        )
        self._blocks = Counter("conclave_blocks", "Blocks committed by this node.", registry=self.registry)
        self._transactions = Counter(
            "conclave_transactions", "Transactions committed in blocks.", registry=self.registry
        )

    def observe_rpc(self, method: str | None, seconds: float, error_code: int | None) -> None:
        """One answered request of a served `method` (None: a name the node does not serve)."""
        label = UNKNOWN_METHOD if method is None else method
        self._rpc_seconds.labels(label).observe(seconds)
        if error_code is not None:
            self._rpc_errors.labels(label, str(error_code)).inc()

    def observe_enclave_call(self, call: str, seconds: float) -> None:
        self._enclave_seconds.labels(call).observe(seconds)

    def observe_block(self, transaction_count: int) -> None:
        self._blocks.inc()
        self._transactions.inc(transaction_count)

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A gauge whose value is read when metrics are collected (e.g. the pool's size)."""
        Gauge(name, documentation, registry=self.registry).set_function(read)

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
