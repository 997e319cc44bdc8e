"""The node's metrics in Prometheus form, one registry a node.

Labels are bounded: the method label takes only names of served methods (the dispatcher
passes None for anything else, counted as "unknown"), the error label takes JSON-RPC
codes, and the peer label the validators this node talks to, so no client can grow the
number of series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from eth_utils import to_checksum_address
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ledger.network import TransportStats

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

    def consensus(
        self, status: Callable[[], Mapping[str, object]], transport: Callable[[], TransportStats | None]
    ) -> None:
        """The ordering service's state and counters (`Ordering.status`) and the links to the
        other validators, read when collected (`ConsensusMetrics`)."""
        self.registry.register(ConsensusMetrics(status, transport))

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


ORDERING_EVENTS = (
    "synced_blocks",
    "refused_sync_blocks",
    "refused_proposals",
    "malformed_payloads",
    "sync_answers_paced",
)
"""The ordering service's counters since the node started (`Ordering.counters`)."""


class ConsensusMetrics:
    """A collector of consensus figures: height, round, validators, the ordering service's
    counters, and per peer whether it is connected and the frames sent, received and
    dropped (with the connections refused, by reason)."""

    def __init__(
        self, status: Callable[[], Mapping[str, object]], transport: Callable[[], TransportStats | None]
    ) -> None:
        self._status = status
        self._transport = transport

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        validators = status["validators"]
        assert isinstance(validators, tuple)
        round_ = -1 if status["round"] is None else status["round"]
        yield GaugeMetricFamily("conclave_consensus_height", "The height being decided.", status["height"])
        yield GaugeMetricFamily("conclave_consensus_round", "Its round (-1: not a validator).", round_)
        yield GaugeMetricFamily("conclave_consensus_validators", "Validators at the head.", len(validators))
        events = CounterMetricFamily(
            "conclave_consensus_events", "Blocks synced from peers, and what was refused.", labels=["event"]
        )
        for event in ORDERING_EVENTS:
            events.add_metric([event], status[event])
        yield events
        stats = self._transport()
        if stats is None:
            return
        connected = GaugeMetricFamily("conclave_peer_connected", "1: connected now.", labels=["peer"])
        frames = CounterMetricFamily(
            "conclave_peer_frames",
            "Frames sent to, received from, dropped for a peer.",
            labels=["peer", "kind"],
        )
        for peer, peer_stats in stats.peers.items():
            label = to_checksum_address(peer)
            connected.add_metric([label], 1 if peer_stats.connected else 0)
            frames.add_metric([label, "sent"], peer_stats.frames_sent)
            frames.add_metric([label, "received"], peer_stats.frames_received)
            frames.add_metric([label, "dropped"], peer_stats.frames_dropped)
        refused = CounterMetricFamily(
            "conclave_peer_connections_refused", "Connections refused, by reason.", labels=["reason"]
        )
        for reason, count in stats.refused.items():
            refused.add_metric([reason], count)
        yield from (connected, frames, refused)
