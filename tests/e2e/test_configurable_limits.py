"""End-to-end: the request, batch, log and pool limits are flags, and each says what it is."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from tests.e2e.chain_helpers import Signer, connect
from tests.support.devnode import start_dev_node


def test_lowered_limits_are_enforced_with_clear_errors() -> None:
    node = start_dev_node(
        "--ephemeral",
        "--max-request-mib",
        "1",
        "--max-batch",
        "3",
        "--max-log-blocks",
        "2",
        "--max-log-results",
        "1",
        "--pool-size",
        "1",
    )
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        batch = node.post([body] * 4).json()
        assert batch["error"]["code"] == -32005 and "at most 3" in batch["error"]["message"]
        assert len(node.post([body] * 3).json()) == 3

        huge = httpx.post(node.rpc_url, content=b" " * (1024 * 1024 + 1), timeout=10)
        assert huge.status_code == 413

        signer = Signer(connect(node), node.accounts[0].key)
        probe, _ = signer.deploy("Probe")
        signer.call_fn(probe.functions.emitMany(2))
        head = int(node.result("eth_blockNumber"), 16)
        wide = node.rpc("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(head)}])
        assert wide["error"]["code"] == -32005 and "at most 2" in wide["error"]["message"]
        many = node.rpc("eth_getLogs", [{"fromBlock": hex(head), "toBlock": hex(head)}])
        assert many["error"]["code"] == -32005 and "more than 1 results" in many["error"]["message"]

        async def oversized_message() -> int | None:
            async with websockets.connect(node.rpc_url.replace("http", "ws"), max_size=None) as ws:
                await ws.send(json.dumps({**body, "params": ["x" * (1024 * 1024)]}))
                try:
                    await ws.recv()
                except websockets.ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None
            return None

        assert asyncio.run(oversized_message()) == 1009  # message too big

    finally:
        node.stop()
