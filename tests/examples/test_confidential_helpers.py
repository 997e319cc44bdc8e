"""The confidential-transaction helpers of examples/confidential against a real dev node:
conclave_client.py with web3.py (token in a header) and conclave.mjs with ethers v6
(token in the URL, events over WebSocket)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import Web3RPCError

from tests.support.devnode import DevNode, start_dev_node

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "examples" / "confidential"))

from conclave_client import (  # noqa: E402
    ConclaveAuthError,
    rpc_url_with_token,
    send_private,
    sign_in,
    siwe_message,
    web3_for,
)

ARTIFACT = json.loads(
    (REPO_ROOT / "examples" / "purchase_orders" / "build" / "PurchaseOrders.json").read_text()
)
FLOW = REPO_ROOT / "tests" / "examples" / "confidential_flow.mjs"
FLOW_TIMEOUT_S = 120
NOT_THE_SENDER = (4100, -32007)


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


def _deploy_private(w3: Web3, account: Any, distributor: str) -> tuple[Any, Any]:
    factory = w3.eth.contract(abi=ARTIFACT["abi"], bytecode=ARTIFACT["bytecode"])
    tx = factory.constructor(distributor).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    signed = account.sign_transaction(tx)
    return signed, send_private(w3, signed, [distributor])


def test_the_sign_in_message_is_eip_4361() -> None:
    from datetime import UTC, datetime

    message = siwe_message(
        domain="127.0.0.1:8545",
        address="0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        uri="http://127.0.0.1:8545",
        chain_id=1337,
        nonce="n0nce123",
        issued_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        statement="Hello.",
    )
    assert message == (
        "127.0.0.1:8545 wants you to sign in with your Ethereum account:\n"
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n"
        "\n"
        "Hello.\n"
        "\n"
        "URI: http://127.0.0.1:8545\n"
        "Version: 1\n"
        "Chain ID: 1337\n"
        "Nonce: n0nce123\n"
        "Issued At: 2025-01-02T03:04:05Z"
    )
    assert rpc_url_with_token("http://127.0.0.1:8545/", "T") == "http://127.0.0.1:8545/rpc/T"
    assert rpc_url_with_token("http://127.0.0.1:8545", "T", websocket=True) == "ws://127.0.0.1:8545/rpc/T"


def test_web3_helper_signs_in_sends_privately_and_reads_as_a_party(node: DevNode) -> None:
    retailer, distributor, outsider = (Account.from_key(node.accounts[i].key) for i in (7, 8, 9))
    tokens = {who.address: sign_in(node.rpc_url, who) for who in (retailer, distributor, outsider)}
    w3 = web3_for(node.rpc_url, tokens[retailer.address])

    signed, tx_hash = _deploy_private(w3, retailer, distributor.address)
    assert tx_hash == signed.hash
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    assert receipt["status"] == 1
    address = receipt["contractAddress"]

    party = web3_for(node.rpc_url, tokens[distributor.address])
    in_url = Web3(Web3.HTTPProvider(rpc_url_with_token(node.rpc_url, tokens[distributor.address])))
    for reader in (w3, party, in_url):
        contract = reader.eth.contract(address=address, abi=ARTIFACT["abi"])
        assert contract.functions.distributor().call() == distributor.address
        assert reader.eth.get_transaction(tx_hash)["hash"] == tx_hash
    for stranger in (web3_for(node.rpc_url, tokens[outsider.address]), web3_for(node.rpc_url, None)):
        assert stranger.eth.get_code(address) == b""
        assert (
            stranger.provider.make_request("eth_getTransactionByHash", [tx_hash.to_0x_hex()])["result"]
            is None
        )


def test_only_the_sender_may_send_its_transaction_privately(node: DevNode) -> None:
    sender, other = (Account.from_key(node.accounts[i].key) for i in (6, 5))
    w3_other = web3_for(node.rpc_url, sign_in(node.rpc_url, other))
    tx = {
        "to": other.address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "nonce": w3_other.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3_other.eth.chain_id,
    }
    signed = sender.sign_transaction(tx)
    for w3 in (w3_other, web3_for(node.rpc_url, None)):
        with pytest.raises(Web3RPCError) as refused:
            send_private(w3, signed, [other.address])
        assert refused.value.rpc_response["error"]["code"] in NOT_THE_SENDER, refused.value.rpc_response


def test_a_bad_signature_is_not_signed_in(node: DevNode) -> None:
    class WrongSigner:
        """Claims one address, signs with another key."""

        address = node.accounts[1].address

        @staticmethod
        def sign_message(message: Any) -> Any:
            return Account.from_key(node.accounts[2].key).sign_message(message)

    with pytest.raises(ConclaveAuthError):
        sign_in(node.rpc_url, WrongSigner())  # type: ignore[arg-type]


def test_ethers_helper_token_in_the_url_and_events_over_websocket(node: DevNode) -> None:
    executable = shutil.which("node")
    if executable is None:
        pytest.fail("Node.js (`node`) is not on PATH; it is needed for the ethers helper.")
    if not (REPO_ROOT / "node_modules" / "ethers" / "package.json").is_file():
        pytest.fail("node_modules/ethers is missing: run `npm ci` at the repository root first.")
    retailer, party, outsider = (node.accounts[i] for i in (1, 2, 3))
    env = {**os.environ, "CONCLAVE_PARTY_KEY": party.key, "CONCLAVE_OUTSIDER_KEY": outsider.key}
    try:
        proc = subprocess.run(
            [executable, str(FLOW), node.rpc_url, retailer.key],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=FLOW_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the flow did not finish within {FLOW_TIMEOUT_S} s\n{exc.stdout}\n{exc.stderr}")
    details = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"confidential_flow.mjs exited {proc.returncode}\n{details}"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["retailer"] == retailer.address and summary["party"] == party.address
    assert summary["outsiderLogs"] == 0

    # What the flow did, read back with web3.py: the party sees it, nobody else does.
    contract = Web3.to_checksum_address(summary["contract"])
    w3_party = web3_for(node.rpc_url, sign_in(node.rpc_url, Account.from_key(party.key)))
    orders = w3_party.eth.contract(address=contract, abi=ARTIFACT["abi"])
    assert orders.functions.orderCount().call() == 1
    order_receipt = w3_party.eth.get_transaction_receipt(summary["orderTx"])
    assert order_receipt["blockNumber"] == summary["eventBlock"]
    (event,) = orders.events.OrderCreated().process_receipt(order_receipt)
    assert event["args"]["item"] == "Blue widgets"
    anonymous = web3_for(node.rpc_url, None)
    assert anonymous.eth.get_code(contract) == b""
    assert (
        anonymous.provider.make_request("eth_getTransactionReceipt", [summary["orderTx"]])["result"] is None
    )
