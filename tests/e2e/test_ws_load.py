"""Load: 200 WebSocket subscribers get every new head and every matching log, in order."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import websockets
from eth_account import Account

from tests.e2e.chain_helpers import Signer, connect, fresh_account
from tests.support.devnode import start_dev_node

SUBSCRIBERS = 200
TRANSFERS = 60
TIMEOUT = 120


def _body(method: str, params: list[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


async def _subscriber(url: str, token: str, ready: asyncio.Event, stop: asyncio.Event) -> dict[str, Any]:
    heads: list[int] = []
    logs: list[tuple[int, int]] = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
        )
        heads_id = json.loads(await ws.recv())["result"]
        request = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "eth_subscribe",
            "params": ["logs", {"address": token}],
        }
        await ws.send(json.dumps(request))
        logs_id = json.loads(await ws.recv())["result"]
        ready.set()
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                continue
            params = message["params"]
            if params["subscription"] == heads_id:
                heads.append(int(params["result"]["number"], 16))
            elif params["subscription"] == logs_id:
                result = params["result"]
                logs.append((int(result["blockNumber"], 16), int(result["logIndex"], 16)))
    return {"heads": heads, "logs": logs}


def test_every_subscriber_that_keeps_up_gets_everything() -> None:
    node = start_dev_node("--ephemeral")
    try:
        signer = Signer(connect(node), node.accounts[0].key)
        token, _ = signer.deploy("ConclaveToken", "Load", "LD", 10**24)
        url = node.rpc_url.replace("http://", "ws://")
        sender = Account.from_key(node.accounts[0].key)

        async def run() -> list[dict[str, Any]]:
            stop = asyncio.Event()
            readies = [asyncio.Event() for _ in range(SUBSCRIBERS)]
            tasks = [asyncio.create_task(_subscriber(url, token.address, ready, stop)) for ready in readies]
            await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), TIMEOUT)
            first = int(await asyncio.to_thread(node.result, "eth_blockNumber"), 16) + 1
            await asyncio.to_thread(_send_transfers, node.rpc_url, sender, token, node.chain_id)
            last = int(await asyncio.to_thread(node.result, "eth_blockNumber"), 16)
            await asyncio.sleep(2)
            stop.set()
            results = await asyncio.gather(*tasks)
            for result in results:
                result["range"] = (first, last)
            return results

        results = asyncio.run(run())
        first, last = results[0]["range"]
        expected_logs = [
            (int(entry["blockNumber"], 16), int(entry["logIndex"], 16))
            for entry in node.result(
                "eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last), "address": token.address}]
            )
        ]
        assert len(expected_logs) == TRANSFERS
        for result in results:
            assert [n for n in result["heads"] if n <= last] == list(range(first, last + 1))
            assert result["logs"] == expected_logs
    finally:
        node.stop()


def _send_transfers(rpc_url: str, sender: Any, token: Any, chain_id: int) -> None:
    with httpx.Client(timeout=30) as client:
        nonce = int(
            client.post(
                rpc_url,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_getTransactionCount",
                    "params": [sender.address, "pending"],
                },
            ).json()["result"],
            16,
        )
        hashes = []
        for index in range(TRANSFERS):
            data = token.functions.transfer(fresh_account().address, index + 1)._encode_transaction_data()
            tx = sender.sign_transaction(
                {
                    "chainId": chain_id,
                    "nonce": nonce + index,
                    "to": token.address,
                    "data": data,
                    "gas": 100_000,
                    "maxFeePerGas": 10**11,
                    "maxPriorityFeePerGas": 10**9,
                }
            )
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_sendRawTransaction",
                "params": [tx.raw_transaction.to_0x_hex()],
            }
            hashes.append(client.post(rpc_url, json=body).json()["result"])
            if index % 10 == 9:
                threading.Event().wait(0.05)  # spread the transfers over several blocks
        for tx_hash in hashes:
            body = _body("eth_getTransactionReceipt", [tx_hash])
            while client.post(rpc_url, json=body).json()["result"] is None:
                threading.Event().wait(0.02)
