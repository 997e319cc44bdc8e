"""Proof-of-work methods answer as a post-merge node does: nothing mined, no uncles."""

from __future__ import annotations

from gateway.node import Node
from tests.gateway.inprocess import call, error_of, request


def test_nothing_is_mined(shared_node: Node) -> None:
    assert call(shared_node, "eth_mining") is False
    assert call(shared_node, "eth_hashrate") == "0x0"


def test_known_blocks_have_no_uncles(shared_node: Node) -> None:
    genesis = call(shared_node, "eth_getBlockByNumber", "0x0", False)
    assert call(shared_node, "eth_getUncleCountByBlockHash", genesis["hash"]) == "0x0"
    assert call(shared_node, "eth_getUncleCountByBlockNumber", "latest") == "0x0"
    assert call(shared_node, "eth_getUncleByBlockHashAndIndex", genesis["hash"], "0x0") is None
    assert call(shared_node, "eth_getUncleByBlockNumberAndIndex", "0x0", "0x0") is None


def test_unknown_blocks_have_no_uncle_count(shared_node: Node) -> None:
    assert call(shared_node, "eth_getUncleCountByBlockHash", "0x" + "ab" * 32) is None
    assert call(shared_node, "eth_getUncleCountByBlockNumber", "0x99") is None


def test_work_methods_are_not_served(shared_node: Node) -> None:
    for method in ("eth_getWork", "eth_submitWork", "eth_submitHashrate"):
        assert error_of(shared_node, request(method, []))["code"] == -32601
