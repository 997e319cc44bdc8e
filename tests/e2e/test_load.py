"""Load: 1,000 keep-alive HTTP connections and 200 WebSocket subscribers on one node,
while transactions flow.

Every request on every connection is answered correctly, no connection is dropped, every
subscriber is told of every new block in order, and the node's memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import urlsplit

import httpx
import websockets
from eth_account import Account

from tests.e2e.chain_helpers import fresh_account
from tests.support.devnode import start_dev_node

CONNECTIONS = 1_000
REQUESTS_PER_CONNECTION = 5
SUBSCRIBERS = 200
MAX_RSS_MIB = 300


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


async def _keep_alive_client(host: str, port: int, index: int, start: asyncio.Event) -> int:
    """One connection making several requests in turn; returns how many were answered right."""
    reader, writer = await asyncio.open_connection(host, port)
    await start.wait()
    answered = 0
    try:
        for round_number in range(REQUESTS_PER_CONNECTION):
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": index * 100 + round_number,
                    "method": "eth_blockNumber",
                    "params": [],
                }
            ).encode()
            writer.write(
                b"POST / HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            answer = json.loads(await reader.readexactly(length))
            assert answer["id"] == index * 100 + round_number and answer["result"].startswith("0x")
            answered += 1
    finally:
        writer.close()
    return answered


async def _head_watcher(url: str, ready: asyncio.Event, stop: asyncio.Event) -> list[int]:
    """A WebSocket subscriber to newHeads; the block numbers it was told, in order."""
    heads: list[int] = []
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
        )
        json.loads(await ws.recv())
        ready.set()
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                continue
            heads.append(int(message["params"]["result"]["number"], 16))
    return heads


async def _hold_connections(host: str, port: int) -> tuple[list[int | BaseException], list[list[int]]]:
    start, stop = asyncio.Event(), asyncio.Event()
    readies = [asyncio.Event() for _ in range(SUBSCRIBERS)]
    url = f"ws://{host}:{port}/"
    watchers = [asyncio.create_task(_head_watcher(url, ready, stop)) for ready in readies]
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 60)
    tasks = [asyncio.create_task(_keep_alive_client(host, port, i, start)) for i in range(CONNECTIONS)]
    await asyncio.sleep(0.5)  # every connection is open before any request goes
    start.set()
    answered = await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1.0)  # the last heads reach the watchers
    stop.set()
    return answered, await asyncio.gather(*watchers)


def test_a_thousand_connections_and_two_hundred_subscribers_while_transactions_flow() -> None:
    node = start_dev_node("--ephemeral")
    try:
        sender = Account.from_key(node.accounts[0].key)
        stop = threading.Event()
        sent: list[str] = []

        def send_transactions() -> None:
            with httpx.Client(timeout=30) as client:
                nonce = 0
                while not stop.is_set() and nonce < 200:
                    tx = sender.sign_transaction(
                        {
                            "chainId": node.chain_id,
                            "nonce": nonce,
                            "to": fresh_account().address,
                            "value": 1,
                            "gas": 21_000,
                            "maxFeePerGas": 50 * 10**9,
                            "maxPriorityFeePerGas": 10**9,
                        }
                    )
                    params = [tx.raw_transaction.to_0x_hex()]
                    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": params}
                    sent.append(client.post(node.rpc_url, json=body).json()["result"])
                    nonce += 1

        flow = threading.Thread(target=send_transactions)
        flow.start()
        address = urlsplit(node.rpc_url)
        results, heads = asyncio.run(_hold_connections(address.hostname or "127.0.0.1", address.port or 80))
        stop.set()
        flow.join(timeout=60)
        for seen in heads:  # every subscriber saw every block, in order, from its first on
            assert seen and seen == list(range(seen[0], seen[0] + len(seen))), seen
        common = range(max(seen[0] for seen in heads), min(seen[-1] for seen in heads) + 1)
        assert len(common) >= 2, f"the subscribers saw too few blocks together: {common}"

        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{len(failures)} connections failed, first: {failures[0]!r}"
        assert sum(results) == CONNECTIONS * REQUESTS_PER_CONNECTION  # type: ignore[arg-type]
        assert len(sent) > 0
        rss = _rss_mib(node.process.pid)
        print(f"load: {CONNECTIONS} HTTP, {SUBSCRIBERS} WebSocket, {len(sent)} transactions, {rss:.0f} MiB")
        assert rss < MAX_RSS_MIB
    finally:
        node.stop()
