"""A full pool: better offers evict the cheapest waiting transaction, others are refused."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount

from gateway.node import Node
from tests.evm_runtime.chainkit import ACCOUNTS, GWEI, recipient, sign
from tests.gateway.inprocess import call, error_of, make_node, post, request


def _send(node: Node, account: LocalAccount, fee_cap_gwei: int) -> Any:
    raw = sign(account, nonce=0, value=1, to=recipient(1), maxFeePerGas=fee_cap_gwei * GWEI)
    return post(node, request("eth_sendRawTransaction", ["0x" + raw.hex()]))


def test_a_full_pool_evicts_for_better_offers_and_keeps_answering_reads() -> None:
    node = make_node(pool_size=3)
    hashes = [_send(node, ACCOUNTS[i], fee_cap_gwei=10 + i)["result"] for i in range(3)]
    refused = _send(node, ACCOUNTS[3], fee_cap_gwei=10)
    assert refused["error"]["code"] == -32003
    assert "txpool is full: 3 transactions waiting; offer more than" in refused["error"]["message"]

    accepted = _send(node, ACCOUNTS[4], fee_cap_gwei=50)
    assert "result" in accepted
    assert call(node, "eth_getTransactionByHash", hashes[0]) is None  # the cheapest went
    assert call(node, "eth_getTransactionByHash", hashes[1]) is not None
    assert call(node, "txpool_status") == {"pending": "0x3", "queued": "0x0"}
    assert call(node, "eth_blockNumber") == "0x0"
    assert error_of(node, request("eth_getBalance", ["0x12"]))["code"] == -32602
