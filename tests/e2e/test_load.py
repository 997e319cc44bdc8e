"""Load: 1,000 concurrent keep-alive HTTP connections on one node while transactions flow.

Every request on every connection is answered correctly, no connection is dropped, and
the node's memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import urlsplit

import httpx
from eth_account import Account

from tests.e2e.chain_helpers import fresh_account
from tests.support.devnode import start_dev_node

CONNECTIONS = 1_000
REQUESTS_PER_CONNECTION = 5
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


async def _hold_connections(host: str, port: int) -> list[int | BaseException]:
    start = asyncio.Event()
    tasks = [asyncio.create_task(_keep_alive_client(host, port, i, start)) for i in range(CONNECTIONS)]
    await asyncio.sleep(0.5)  # every connection is open before any request goes
    start.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_a_thousand_keep_alive_connections_while_transactions_flow() -> None:
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
        results = asyncio.run(_hold_connections(address.hostname or "127.0.0.1", address.port or 80))
        stop.set()
        flow.join(timeout=60)

        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{len(failures)} connections failed, first: {failures[0]!r}"
        assert sum(results) == CONNECTIONS * REQUESTS_PER_CONNECTION  # type: ignore[arg-type]
        assert len(sent) > 0
        rss = _rss_mib(node.process.pid)
        print(f"load: {CONNECTIONS} connections, {len(sent)} transactions meanwhile, RSS {rss:.0f} MiB")
        assert rss < MAX_RSS_MIB
    finally:
        node.stop()
