"""End-to-end: transactions and calls traced through web3.py against a real node, whose
enclave runs in its own process (every trace crosses the enclave boundary)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3

from tests.e2e.chain_helpers import Signer, connect
from tests.support.devnode import DevNode, start_dev_node
from tests.support.spec import validate_result


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


@pytest.fixture(scope="module")
def w3(node: DevNode) -> Web3:
    return connect(node)


def test_a_nested_transaction_traced_by_both_tracers(node: DevNode, w3: Web3) -> None:
    alice = Signer(w3, node.accounts[0].key)
    probe, _ = alice.deploy("Probe")
    receipt = alice.call_fn(probe.functions.spawnChild(3))
    tx_hash = receipt["transactionHash"]

    tree = w3.geth.debug.trace_transaction(
        tx_hash, {"tracer": "callTracer", "tracerConfig": {"withLog": True}}
    )
    assert tree["type"] == "CALL" and tree["from"] == alice.address and tree["to"] == probe.address
    assert tree["gasUsed"] == receipt["gasUsed"]
    create, ping = tree["calls"]
    assert create["type"] == "CREATE" and ping["type"] == "CALL" and ping["to"] == create["to"]
    child = probe.functions.lastChild().call()
    assert create["to"] == child
    logged = [log["topics"] for frame in (ping, tree) for log in frame["logs"]]
    assert logged == [log["topics"] for log in receipt["logs"]]

    raw = w3.provider.make_request("debug_traceTransaction", [tx_hash.to_0x_hex()])["result"]
    validate_result("debug_traceTransaction", raw)
    assert raw["gas"] == receipt["gasUsed"] and raw["failed"] is False
    depths = {step["depth"] for step in raw["structLogs"]}
    assert depths == {1, 2}  # the constructor and ping() ran one level down
    creates = [step for step in raw["structLogs"] if step["op"] == "CREATE"]
    assert len(creates) == 1

    block = w3.provider.make_request("debug_traceBlockByNumber", [hex(receipt["blockNumber"])])["result"]
    validate_result("debug_traceBlockByNumber", block)
    assert [entry["txHash"] for entry in block] == [tx_hash.to_0x_hex()]
    assert block[0]["result"] == raw


def test_a_failing_call_is_traced_with_its_reason(node: DevNode, w3: Web3) -> None:
    alice = Signer(w3, node.accounts[0].key)
    probe, _ = alice.deploy("Probe")
    fail = probe.functions.tryChildFail()._encode_transaction_data()
    spawn = probe.functions.spawnChild(1)._encode_transaction_data()
    alice.transact(to=probe.address, data=spawn, gas=500_000)
    answer = w3.provider.make_request(
        "debug_traceCall",
        [{"from": alice.address, "to": probe.address, "input": fail}, "latest", {"tracer": "callTracer"}],
    )
    tree = answer["result"]
    (inner,) = tree["calls"]
    assert inner["type"] == "STATICCALL" and inner["error"] == "execution reverted"
    assert inner["revertReason"] == "child: failed" and "error" not in tree
