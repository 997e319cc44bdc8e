"""eth_fillTransaction on an in-process node: what a wallet fills, unsigned, on any node."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth_account import Account

from gateway.node import Node
from tests.evm_runtime.chainkit import ACCOUNTS, GWEI, recipient, sign
from tests.gateway.inprocess import BOB, call, error_of, request

CAROL = ACCOUNTS[2]
"""A funded account that is not a dev account: filling needs no key."""


def _signed_from(filled: dict[str, Any], key: bytes) -> bytes:
    """What a wallet signs of eth_fillTransaction's answer."""
    tx = filled["tx"]
    fields: dict[str, Any] = {
        "chainId": int(tx.get("chainId", "0x539"), 16),
        "nonce": int(tx["nonce"], 16),
        "gas": int(tx["gas"], 16),
        "value": int(tx["value"], 16),
        "data": tx["input"],
    }
    if tx["to"] is not None:
        fields["to"] = tx["to"]
    if tx["type"] == "0x2":
        fields["maxFeePerGas"] = int(tx["maxFeePerGas"], 16)
        fields["maxPriorityFeePerGas"] = int(tx["maxPriorityFeePerGas"], 16)
    else:
        fields["gasPrice"] = int(tx["gasPrice"], 16)
    if tx["type"] != "0x0":
        fields["type"] = int(tx["type"], 16)
        fields["accessList"] = tx["accessList"]
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


def test_a_transfer_is_filled_as_eip1559_with_the_node_fees(shared_node: Node) -> None:
    filled = call(
        shared_node, "eth_fillTransaction", {"from": CAROL.address, "to": recipient(1), "value": "0x5"}
    )
    tx = filled["tx"]
    next_base_fee = int(call(shared_node, "eth_baseFee"), 16)
    tip = int(call(shared_node, "eth_maxPriorityFeePerGas"), 16)
    assert tx["type"] == "0x2" and tx["chainId"] == call(shared_node, "eth_chainId")
    assert tx["nonce"] == call(shared_node, "eth_getTransactionCount", CAROL.address, "pending")
    assert tx["gas"] == hex(21_000) and tx["value"] == "0x5" and tx["to"] == recipient(1)
    assert int(tx["maxPriorityFeePerGas"], 16) == tip
    assert int(tx["maxFeePerGas"], 16) == 2 * next_base_fee + tip
    assert (tx["r"], tx["s"], tx["yParity"]) == ("0x0", "0x0", "0x0")
    assert "blockHash" not in tx


def test_raw_is_the_unsigned_encoding_with_a_zero_signature(shared_node: Node) -> None:
    filled = call(shared_node, "eth_fillTransaction", {"from": CAROL.address, "to": recipient(1)})
    raw = bytes.fromhex(filled["raw"][2:])
    assert raw[0] == 2
    fields = rlp.decode(raw[1:])
    assert fields[-3:] == [b"", b"", b""]  # y_parity, r, s
    assert int.from_bytes(fields[1], "big") == int(filled["tx"]["nonce"], 16)
    # Signed, the same fields make a transaction with the same signing payload.
    signed = Account.sign_transaction(
        {
            "type": 2,
            "chainId": 1337,
            "nonce": int(filled["tx"]["nonce"], 16),
            "gas": 21_000,
            "to": recipient(1),
            "value": 0,
            "data": b"",
            "maxFeePerGas": int(filled["tx"]["maxFeePerGas"], 16),
            "maxPriorityFeePerGas": int(filled["tx"]["maxPriorityFeePerGas"], 16),
        },
        CAROL.key,
    )
    assert rlp.decode(bytes(signed.raw_transaction)[1:])[:-3] == fields[:-3]


def test_the_nonce_counts_the_pool_and_the_filled_transaction_is_sent(node: Node) -> None:
    call(node, "eth_sendRawTransaction", "0x" + sign(CAROL, nonce=0).hex())
    filled = call(node, "eth_fillTransaction", {"from": CAROL.address, "to": recipient(2), "value": "0x7"})
    assert filled["tx"]["nonce"] == "0x1"
    tx_hash = call(node, "eth_sendRawTransaction", "0x" + _signed_from(filled, bytes(CAROL.key)).hex())
    node.ordering.seal()
    assert call(node, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"
    assert call(node, "eth_getBalance", recipient(2), "latest") == "0x7"


def test_gas_is_estimated_for_a_creation(shared_node: Node) -> None:
    tx = call(shared_node, "eth_fillTransaction", {"from": CAROL.address, "input": "0x6000"})["tx"]
    assert tx["to"] is None and int(tx["gas"], 16) > 53_000


def test_given_fields_are_kept(shared_node: Node) -> None:
    given = {
        "from": CAROL.address,
        "to": recipient(1),
        "nonce": "0x9",
        "gas": hex(50_000),
        "maxFeePerGas": hex(7 * GWEI),
        "maxPriorityFeePerGas": hex(3 * GWEI),
        "chainId": "0x539",
    }
    tx = call(shared_node, "eth_fillTransaction", given)["tx"]
    assert (tx["nonce"], tx["gas"], tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]) == (
        "0x9",
        hex(50_000),
        hex(7 * GWEI),
        hex(3 * GWEI),
    )
    cheap = {"to": recipient(1), "gas": hex(21_000), "maxFeePerGas": hex(GWEI // 2)}
    capped = call(shared_node, "eth_fillTransaction", cheap)["tx"]
    assert capped["maxPriorityFeePerGas"] == hex(GWEI // 2)


def test_a_gas_price_makes_a_legacy_or_access_list_transaction(node: Node) -> None:
    gas_price = int(call(node, "eth_gasPrice"), 16)
    legacy = call(
        node, "eth_fillTransaction", {"from": CAROL.address, "to": recipient(1), "gasPrice": hex(gas_price)}
    )
    assert legacy["tx"]["type"] == "0x0" and int(legacy["raw"][2:4], 16) >= 0xC0  # an RLP list
    asked = call(node, "eth_fillTransaction", {"from": CAROL.address, "to": recipient(1), "type": "0x0"})
    assert asked["tx"]["type"] == "0x0" and asked["tx"]["gasPrice"] == hex(gas_price)
    entry = {"address": recipient(1), "storageKeys": ["0x" + "00" * 32]}
    typed = call(
        node, "eth_fillTransaction", {"from": CAROL.address, "to": recipient(1), "accessList": [entry]}
    )
    assert typed["tx"]["type"] == "0x2"
    with_list = call(
        node,
        "eth_fillTransaction",
        {"from": CAROL.address, "to": recipient(1), "gasPrice": hex(gas_price), "accessList": [entry]},
    )
    assert with_list["tx"]["type"] == "0x1" and with_list["tx"]["accessList"] == [entry]
    assert with_list["raw"].startswith("0x01")
    tx_hash = call(node, "eth_sendRawTransaction", "0x" + _signed_from(with_list, bytes(CAROL.key)).hex())
    node.ordering.seal()
    assert call(node, "eth_getTransactionReceipt", tx_hash)["type"] == "0x1"


@pytest.mark.parametrize(
    ("transaction", "code", "words"),
    [
        ({"type": "0x3", "to": recipient(1)}, -32602, "blob"),
        ({"to": recipient(1), "blobVersionedHashes": ["0x01" + "00" * 31]}, -32602, "blob"),
        ({"to": recipient(1), "authorizationList": [{"address": recipient(1)}]}, -32602, "set-code"),
        ({"type": "0x7", "to": recipient(1)}, -32602, "unknown transaction type"),
        ({"type": "0x0", "maxFeePerGas": "0x1"}, -32602, "takes gasPrice"),
        ({"type": "0x2", "gasPrice": "0x1"}, -32602, "not gasPrice"),
        ({"maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x2"}, -32602, "above maxFeePerGas"),
        (
            {"type": "0x0", "accessList": [{"address": recipient(1), "storageKeys": []}]},
            -32602,
            "no accessList",
        ),
        ({"to": recipient(1), "chainId": "0x1"}, -32000, "chainId 0x1"),
        ({"to": recipient(1), "gas": hex(10**9)}, -32000, "block gas limit"),
        ("0x01", -32602, "transaction object"),
    ],
)
def test_what_cannot_be_filled_is_refused(shared_node: Node, transaction: Any, code: int, words: str) -> None:
    error = error_of(shared_node, request("eth_fillTransaction", [transaction]))
    assert error["code"] == code and words in error["message"], error


def test_dev_signing_fills_the_same_way(dev: Node) -> None:
    filled = call(dev, "eth_fillTransaction", {"from": BOB.address, "to": recipient(3), "value": "0x1"})
    signed = call(dev, "eth_signTransaction", {"from": BOB.address, "to": recipient(3), "value": "0x1"})
    for field in ("nonce", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "chainId", "type", "to", "value"):
        assert signed["tx"][field] == filled["tx"][field], field
