"""End-to-end: web3.py's AsyncWeb3 over a WebSocket: calls, batches and subscriptions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families
from web3 import AsyncWeb3, WebSocketProvider

from tests.e2e.chain_helpers import Signer, connect, fresh_account, wait_receipt
from tests.support.devnode import DevNode, start_dev_node

TIMEOUT = 30


@pytest.fixture(scope="module")
def ws_node() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


def _request(method: str, params: list[Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _ws_url(node: DevNode, path: str = "/") -> str:
    return node.rpc_url.replace("http://", "ws://").rstrip("/") + path


async def _next(w3: AsyncWeb3, count: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []

    async def collect() -> None:
        async for message in w3.socket.process_subscriptions():
            received.append(message)
            if len(received) == count:
                return

    await asyncio.wait_for(collect(), TIMEOUT)
    return received


def test_calls_and_subscriptions_over_web3_async(ws_node: DevNode) -> None:
    http = connect(ws_node)
    signer = Signer(http, ws_node.accounts[2].key)
    probe, _ = signer.deploy("Probe")

    async def run() -> None:
        async with AsyncWeb3(WebSocketProvider(_ws_url(ws_node, "/ws"))) as w3:
            assert await w3.eth.chain_id == ws_node.chain_id
            assert await w3.eth.block_number >= 1
            heads = await w3.eth.subscribe("newHeads")
            logs = await w3.eth.subscribe("logs", {"address": probe.address})
            pending = await w3.eth.subscribe("newPendingTransactions")
            tx_hash = await asyncio.to_thread(
                signer.send, to=probe.address, data=probe.functions.emitMany(2)._encode_transaction_data()
            )
            receipt = await asyncio.to_thread(wait_receipt, http, tx_hash)
            messages = await _next(w3, 2 + len(receipt["logs"]))  # pending, head, every log
            by_subscription: dict[str, list[Any]] = {}
            for message in messages:
                by_subscription.setdefault(message["subscription"], []).append(message["result"])
            assert [bytes(h) for h in by_subscription[pending]] == [bytes(tx_hash)]
            [head] = by_subscription[heads]
            assert head["number"] == receipt["blockNumber"] and head["hash"] == receipt["blockHash"]
            assert len(by_subscription[logs]) == len(receipt["logs"]) >= 3
            assert [entry["logIndex"] for entry in by_subscription[logs]] == [
                e["logIndex"] for e in receipt["logs"]
            ]
            assert await w3.eth.unsubscribe(logs) is True

    asyncio.run(run())


def test_topic_filters_narrow_the_logs(ws_node: DevNode) -> None:
    signer = Signer(connect(ws_node), ws_node.accounts[3].key)
    token, _ = signer.deploy("ConclaveToken", "T", "T", 10**24)
    receiver = fresh_account().address
    transfer_topic = "0x" + AsyncWeb3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix(
        "0x"
    )
    to_topic = "0x" + "00" * 12 + receiver[2:].lower()

    async def run() -> None:
        async with websockets.connect(_ws_url(ws_node)) as ws:
            request = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_subscribe",
                "params": ["logs", {"address": token.address, "topics": [transfer_topic, None, to_topic]}],
            }
            await ws.send(json.dumps(request))
            subscription = json.loads(await ws.recv())["result"]
            await asyncio.to_thread(signer.call_fn, token.functions.transfer(fresh_account().address, 1))
            await asyncio.to_thread(signer.call_fn, token.functions.transfer(receiver, 7))
            note = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert note["params"]["subscription"] == subscription
            assert note["params"]["result"]["topics"][2] == to_topic
            assert int(note["params"]["result"]["data"], 16) == 7

    asyncio.run(run())


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (["blocks"], "unknown subscription type 'blocks'"),
        ([], "expected [kind"),
        (["logs", {"fromBlock": "0x1"}], "address and topics only"),
        (["logs", {"address": "0x12"}], "invalid logs filter"),
        (["newHeads", True], "takes no options"),
        (["newPendingTransactions", "yes"], "takes true"),
    ],
)
def test_bad_subscriptions_are_refused_clearly(ws_node: DevNode, params: list[Any], fragment: str) -> None:
    async def run() -> dict[str, Any]:
        async with websockets.connect(_ws_url(ws_node)) as ws:
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": 9, "method": "eth_subscribe", "params": params})
            )
            return dict(json.loads(await ws.recv()))

    answer = asyncio.run(run())
    assert answer["id"] == 9 and answer["error"]["code"] == -32602
    assert fragment in answer["error"]["message"]


def test_batches_parse_errors_and_http_only_limits(ws_node: DevNode) -> None:
    async def run() -> list[Any]:
        async with websockets.connect(_ws_url(ws_node)) as ws:
            await ws.send(
                json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber"} for i in range(3)])
            )
            batch = json.loads(await ws.recv())
            await ws.send("{not json")
            parse = json.loads(await ws.recv())
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": 4, "method": "eth_unsubscribe", "params": ["0x1"]})
            )
            unknown = json.loads(await ws.recv())
            return [batch, parse, unknown]

    batch, parse, unknown = asyncio.run(run())
    assert [answer["id"] for answer in batch] == [0, 1, 2]
    assert parse["error"]["code"] == -32700
    assert unknown["result"] is False


def test_subscription_methods_are_websocket_only(ws_node: DevNode) -> None:
    answer = ws_node.rpc("eth_subscribe", ["newHeads"])
    assert answer["error"]["code"] == -32601


def _websocket_clients(node: DevNode) -> float:
    metrics = httpx.get(node.rpc_url.rstrip("/") + "/metrics", timeout=10).text
    return next(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "conclave_websocket_clients"
    )


def _masked_text_frame(text: bytes) -> bytes:
    mask = os.urandom(4)
    length = (
        bytes([0x80 | len(text)]) if len(text) < 126 else bytes([0x80 | 126]) + struct.pack(">H", len(text))
    )
    return b"\x81" + length + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(text))


def test_a_client_that_stops_reading_is_dropped_and_the_node_goes_on(ws_node: DevNode) -> None:
    """A raw client subscribes, then never reads; the node must not buffer for it forever."""
    address = urlsplit(ws_node.rpc_url)
    client = socket.create_connection((address.hostname, address.port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall(
        f"GET / HTTP/1.1\r\nHost: node\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert client.recv(1024).startswith(b"HTTP/1.1 101")
    client.sendall(
        _masked_text_frame(json.dumps(_request("eth_subscribe", ["newPendingTransactions", True])).encode())
    )

    sender = Account.from_key(ws_node.accounts[4].key)
    nonce = int(ws_node.result("eth_getTransactionCount", [sender.address, "pending"]), 16)
    calldata = "0x" + "ab" * 60_000  # each notification carries ~120 kB: 300 of them overflow any buffer
    for index in range(300):
        tx = sender.sign_transaction(
            {
                "chainId": ws_node.chain_id,
                "nonce": nonce + index,
                "to": sender.address,
                "data": calldata,
                "gas": 2_000_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        ws_node.result("eth_sendRawTransaction", [tx.raw_transaction.to_0x_hex()])

    deadline = time.monotonic() + TIMEOUT
    while _websocket_clients(ws_node) > 0:
        assert time.monotonic() < deadline, "the node still serves a client that does not read"
        time.sleep(0.1)
    client.settimeout(1)
    received = 0
    with contextlib.suppress(OSError):
        while chunk := client.recv(1 << 20):
            received += len(chunk)
    client.close()
    assert received < 300 * 120_000 / 2, "the node sent nearly everything: nothing was dropped"
    assert int(ws_node.result("eth_blockNumber"), 16) >= 1
