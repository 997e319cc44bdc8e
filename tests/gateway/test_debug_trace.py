"""debug_traceTransaction, debug_traceCall, debug_traceBlockByNumber/ByHash on an in-process node."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.node import Node
from tests.evm_runtime.chainkit import recipient
from tests.gateway.inprocess import ALICE, call, error_of, request
from tests.support.artifacts import load_artifact

PROBE = load_artifact("Probe")


def deploy_probe(node: Node) -> tuple[str, str]:
    """The Probe's address and the hash of a transaction that set its value."""
    created = call(
        node, "eth_sendTransaction", {"from": ALICE.address, "data": PROBE["bytecode"], "gas": "0x2dc6c0"}
    )
    node.ordering.seal()
    probe = call(node, "eth_getTransactionReceipt", created)["contractAddress"]
    selector = "0x60fe47b1"  # set(uint256)
    tx_hash = call(
        node, "eth_sendTransaction", {"from": ALICE.address, "to": probe, "data": selector + "00" * 31 + "07"}
    )
    call(node, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(1), "value": "0x1"})
    node.ordering.seal()
    return probe, tx_hash


@pytest.fixture
def traced(dev: Node) -> tuple[Node, str, str]:
    probe, tx_hash = deploy_probe(dev)
    return dev, probe, tx_hash


def test_trace_transaction_struct_logger_and_call_tracer(traced: tuple[Node, str, str]) -> None:
    node, probe, tx_hash = traced
    receipt = call(node, "eth_getTransactionReceipt", tx_hash)
    struct = call(node, "debug_traceTransaction", tx_hash)
    assert struct["gas"] == int(receipt["gasUsed"], 16) and struct["failed"] is False
    assert struct["returnValue"] == "0x"
    first = struct["structLogs"][0]
    assert first == {
        "pc": 0,
        "op": "PUSH1",
        "gas": first["gas"],
        "gasCost": 3,
        "depth": 1,
        "refund": 0,
        "stack": [],
    }
    store = next(step for step in struct["structLogs"] if step["op"] == "SSTORE")
    assert store["storage"] == {"0x" + "00" * 32: "0x" + "00" * 31 + "07"}

    tree = call(
        node, "debug_traceTransaction", tx_hash, {"tracer": "callTracer", "tracerConfig": {"withLog": True}}
    )
    assert tree["type"] == "CALL" and tree["from"] == ALICE.address and tree["to"].lower() == probe.lower()
    assert tree["gasUsed"] == receipt["gasUsed"] and tree["value"] == "0x0"
    assert [log["topics"] for log in tree["logs"]] == [log["topics"] for log in receipt["logs"]]
    assert "calls" not in tree and "error" not in tree


def test_trace_block_by_number_and_hash_agree(traced: tuple[Node, str, str]) -> None:
    node, _, tx_hash = traced
    block = call(node, "eth_getBlockByNumber", "latest", False)
    by_number = call(node, "debug_traceBlockByNumber", block["number"], {"tracer": "callTracer"})
    by_hash = call(node, "debug_traceBlockByHash", block["hash"], {"tracer": "callTracer"})
    assert by_number == by_hash
    assert [entry["txHash"] for entry in by_number] == block["transactions"]
    assert by_number[0]["txHash"] == tx_hash
    transfer = by_number[1]["result"]
    assert transfer["value"] == "0x1" and transfer["gasUsed"] == hex(21_000)


def test_trace_call_of_a_revert_is_a_trace(traced: tuple[Node, str, str]) -> None:
    node, probe, _ = traced
    reverting = {"from": ALICE.address, "to": probe, "data": "0x" + "a" * 8}  # no such function
    tree = call(node, "debug_traceCall", reverting, "latest", {"tracer": "callTracer"})
    assert tree["error"] == "execution reverted" and "output" not in tree
    struct = call(node, "debug_traceCall", reverting, "latest", {"disableStack": True, "limit": 5})
    assert struct["failed"] is True and len(struct["structLogs"]) == 5
    assert all("stack" not in step for step in struct["structLogs"])


@pytest.mark.parametrize(
    ("method", "params", "code", "words"),
    [
        ("debug_traceTransaction", ["0x" + "11" * 32], -32001, "not found"),
        ("debug_traceBlockByNumber", ["0x0"], -32000, "genesis"),
        ("debug_traceBlockByNumber", ["0x99"], -32001, "not found"),
        ("debug_traceBlockByHash", ["0x" + "22" * 32], -32001, "not found"),
        ("debug_traceBlockByNumber", ["latest", {"tracer": "prestateTracer"}], -32602, "callTracer"),
        ("debug_traceBlockByNumber", ["latest", {"limit": -1}], -32602, "limit"),
        ("debug_traceBlockByNumber", ["latest", {"limit": "0x10"}], -32602, "limit"),
        ("debug_traceBlockByNumber", ["latest", {"enableMemory": "yes"}], -32602, "enableMemory"),
        ("debug_traceBlockByNumber", ["latest", {"tracerConfig": {"diffMode": True}}], -32602, "diffMode"),
        ("debug_traceBlockByNumber", ["latest", {"stateOverrides": {}}], -32602, "stateOverrides"),
        ("debug_traceBlockByNumber", ["latest", []], -32602, "trace config"),
        ("debug_traceCall", [{"to": recipient(1), "gas": hex(10**9)}], -32000, "gas limit"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    dev: Node, method: str, params: list[Any], code: int, words: str
) -> None:
    call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(1), "value": "0x1"})
    dev.ordering.seal()
    error = error_of(dev, request(method, params))
    assert error["code"] == code and words in error["message"], error


def test_timeout_and_debug_are_accepted(traced: tuple[Node, str, str]) -> None:
    node, _, tx_hash = traced
    result = call(node, "debug_traceTransaction", tx_hash, {"timeout": "5s", "debug": False, "tracer": ""})
    assert result["structLogs"]
