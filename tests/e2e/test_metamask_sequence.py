"""MetaMask's calls on a custom network, replayed as raw JSON-RPC (from `clients.md`):
add the network, read the account, estimate, sign locally and send, confirm.

MetaMask reads fees from eth_gasPrice alone on an unknown chain and, since the latest
block has baseFeePerGas, sends a type-2 transaction with that price as both fee cap and
tip. It takes the gas limit from eth_estimateGas × 1.5, capped at 90% of the block's.
"""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account

from tests.e2e.chain_helpers import fresh_account
from tests.support.devnode import DevNode

CONFIRM_TIMEOUT = 30


def _rpc(node: DevNode, method: str, *params: Any) -> Any:
    return node.result(method, list(params))


def test_metamask_adds_the_network_sends_and_confirms(node: DevNode) -> None:
    # Add network: the chain id typed by the user must match eth_chainId.
    assert int(_rpc(node, "eth_chainId"), 16) == node.chain_id
    latest = _rpc(node, "eth_getBlockByNumber", "latest", False)
    assert "baseFeePerGas" in latest  # EIP-1559 network
    assert int(_rpc(node, "eth_blockNumber"), 16) == int(latest["number"], 16)

    wallet = Account.from_key(node.accounts[9].key)
    balance = int(_rpc(node, "eth_getBalance", wallet.address, "latest"), 16)
    assert balance > 0

    # Send to an EOA: eth_getCode says it is not a contract; the gas is then the fixed 21000.
    recipient = fresh_account().address
    assert _rpc(node, "eth_getCode", recipient, "latest") == "0x"
    gas_price = int(_rpc(node, "eth_gasPrice"), 16)
    block_gas_limit = int(_rpc(node, "eth_getBlockByNumber", "latest", False)["gasLimit"], 16)
    estimate = int(
        _rpc(node, "eth_estimateGas", {"from": wallet.address, "to": recipient, "value": "0x1"}), 16
    )
    assert estimate == 21_000
    gas = min(int(estimate * 1.5), block_gas_limit * 9 // 10)
    nonce = int(_rpc(node, "eth_getTransactionCount", wallet.address, "latest"), 16)
    signed = wallet.sign_transaction(
        {
            "type": 2,
            "chainId": node.chain_id,
            "nonce": nonce,
            "to": recipient,
            "value": 10**15,
            "gas": gas,
            "maxFeePerGas": gas_price,
            "maxPriorityFeePerGas": gas_price,
        }
    )
    tx_hash = _rpc(node, "eth_sendRawTransaction", signed.raw_transaction.to_0x_hex())
    assert tx_hash == signed.hash.to_0x_hex()

    # Confirm: poll for the receipt, then read the transaction and its block's time.
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    while (receipt := _rpc(node, "eth_getTransactionReceipt", tx_hash)) is None:
        assert time.monotonic() < deadline, "no receipt"
        time.sleep(0.05)
    assert receipt["status"] == "0x1" and receipt["gasUsed"] == hex(21_000)
    transaction = _rpc(node, "eth_getTransactionByHash", tx_hash)
    assert transaction["blockHash"] == receipt["blockHash"] and transaction["type"] == "0x2"
    block = _rpc(node, "eth_getBlockByHash", receipt["blockHash"], False)
    assert int(block["timestamp"], 16) > 0 and tx_hash in block["transactions"]
    assert int(_rpc(node, "eth_getTransactionCount", wallet.address, "latest"), 16) == nonce + 1
    assert int(_rpc(node, "eth_getBalance", recipient, "latest"), 16) == 10**15
    spent = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    assert int(_rpc(node, "eth_getBalance", wallet.address, "latest"), 16) == balance - 10**15 - spent


def test_a_dropped_transaction_is_detected_by_its_nonce(node: DevNode) -> None:
    """MetaMask notices a replaced transaction when the account's nonce moved past it."""
    wallet = Account.from_key(node.accounts[8].key)
    nonce = int(_rpc(node, "eth_getTransactionCount", wallet.address, "latest"), 16)
    fees = {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "gas": 21_000, "chainId": node.chain_id}
    first = wallet.sign_transaction(
        {**fees, "type": 2, "nonce": nonce, "to": fresh_account().address, "value": 1}
    )
    _rpc(node, "eth_sendRawTransaction", first.raw_transaction.to_0x_hex())
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    while int(_rpc(node, "eth_getTransactionCount", wallet.address, "latest"), 16) == nonce:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = wallet.sign_transaction(
        {**fees, "type": 2, "nonce": nonce, "to": fresh_account().address, "value": 2}
    )
    answer = node.rpc("eth_sendRawTransaction", [again.raw_transaction.to_0x_hex()])
    assert answer["error"]["code"] == 1 and "nonce too low" in answer["error"]["message"]
