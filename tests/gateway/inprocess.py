"""An in-process node and a JSON-RPC client for it: bodies go straight to `handle_body`.

No server, no event loop; blocks are sealed by calling the ordering service's `seal()`.
"""

from __future__ import annotations

import json
from typing import Any

from evm_runtime.chain import GenesisAccount
from gateway.jsonrpc import Limits, handle_body
from gateway.node import Node, NodeConfig
from tests.evm_runtime.chainkit import ACCOUNTS, ETHER, GWEI, address_of

ALICE, BOB = ACCOUNTS[:2]
POOR = ACCOUNTS[5]
POOR_BALANCE = 21_000 * 2 * GWEI + 1  # one transfer of 1 wei at a fee cap of 2 gwei
COINBASE = "0x" + "00" * 20


def make_node(**config: Any) -> Node:
    """A node on a new in-memory chain; ALICE..ACCOUNTS[4] hold 100 ether, POOR a little."""
    alloc = {address_of(a): GenesisAccount(balance=100 * ETHER) for a in ACCOUNTS[:5]}
    alloc[address_of(POOR)] = GenesisAccount(balance=POOR_BALANCE)
    return Node(
        NodeConfig(
            database_url="sqlite://",
            genesis_alloc=alloc,
            dev_accounts=(address_of(ALICE), address_of(BOB)),
            dev_keys=(bytes(ALICE.key), bytes(BOB.key)),
            genesis_timestamp=1_000,
            **config,
        )
    )


def strict_loads(text: bytes) -> Any:
    """json.loads that refuses NaN and Infinity, which are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def post(node: Node, payload: Any, limits: Limits | None = None) -> Any:
    raw = payload if isinstance(payload, bytes) else body(payload)
    answer = handle_body(node, raw) if limits is None else handle_body(node, raw, limits)
    return None if answer is None else strict_loads(answer)


def request(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def call(node: Node, method: str, *params: Any) -> Any:
    answer = post(node, request(method, list(params)))
    assert "error" not in answer, answer
    return answer["result"]


def error_of(node: Node, message: Any) -> dict[str, Any]:
    answer = post(node, message)
    assert "result" not in answer, answer
    return answer["error"]
