"""End-to-end: ethers v6 `contract.on` and viem `watchContractEvent` over the node's WebSocket."""

from __future__ import annotations

from typing import Any

from web3 import Web3

from tests.e2e.test_js_clients import run_flow


def test_contract_events_reach_ethers_and_viem_over_websocket(dev_node: Any) -> None:
    account = dev_node.accounts[6]
    summary = run_flow("ws_events.mjs", dev_node.rpc_url, account.key)
    w3 = Web3(Web3.HTTPProvider(dev_node.rpc_url))
    assert w3.eth.get_code(Web3.to_checksum_address(summary["token"])) != b""
    assert summary["viemLogBlock"] > summary["ethersEventBlock"] >= 1
    assert summary["ethersBlock"] >= 1 and summary["viemBlock"] >= 1
