"""Metrics count what the node did, with labels no client can multiply."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.node import Node
from tests.evm_runtime.chainkit import sign
from tests.gateway.inprocess import ALICE, call, error_of, post, request


def _samples(node: Node) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = node.metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_are_counted_by_method(node: Node) -> None:
    call(node, "eth_chainId")
    call(node, "eth_chainId")
    samples = _samples(node)
    assert samples[("conclave_rpc_request_seconds_count", (("method", "eth_chainId"),))] == 2


def test_unknown_methods_share_one_label(node: Node) -> None:
    for index in range(50):
        error_of(node, request(f"no_such_method_{index}", []))
    samples = _samples(node)
    assert samples[("conclave_rpc_request_seconds_count", (("method", "unknown"),))] == 50
    assert samples[("conclave_rpc_errors_total", (("code", "-32601"), ("method", "unknown")))] == 50
    assert not any("no_such_method" in str(labels) for _, labels in samples)


def test_errors_are_counted_by_code(node: Node) -> None:
    error_of(node, request("eth_getBalance", ["0x12"]))
    samples = _samples(node)
    assert samples[("conclave_rpc_errors_total", (("code", "-32602"), ("method", "eth_getBalance")))] == 1


def test_blocks_transactions_and_pool_are_gauged(node: Node) -> None:
    post(node, request("eth_sendRawTransaction", ["0x" + sign(ALICE, nonce=0, value=1).hex()]))
    assert _samples(node)[("conclave_pool_transactions", ())] == 1
    node.ordering.seal()
    samples = _samples(node)
    assert samples[("conclave_blocks_total", ())] == 1
    assert samples[("conclave_transactions_total", ())] == 1
    assert samples[("conclave_latest_block", ())] == 1
    assert samples[("conclave_pool_transactions", ())] == 0


def test_status_reports_the_head_and_the_enclave(node: Node) -> None:
    status = node.status()
    assert status["status"] == "healthy"
    assert status["latestBlock"]["number"] == 0  # type: ignore[index]
    enclave = status["enclave"]
    assert enclave["mode"] == "in-process"  # type: ignore[index]
    assert enclave["measurement"] == "0x" + node.enclave.measurement.hex()  # type: ignore[index]


def test_consensus_is_measured(node: Node) -> None:
    samples = _samples(node)
    assert samples[("conclave_consensus_height", ())] == node.head.number + 1
    assert samples[("conclave_consensus_validators", ())] == 1
    assert samples[("conclave_consensus_events_total", (("event", "refused_proposals"),))] == 0
    assert not any(name.startswith("conclave_peer_") for name, _ in samples)  # a node without peers
