"""End-to-end: the ethers v6 and viem client flows (tests/js/*.mjs) against a running node.

Each flow deploys ConclaveToken, transfers tokens and ether with the library's
default EIP-1559 fee logic and checks custom-error decoding, then prints a JSON
summary. Here we run it, check the summary, and cross-check the chain state it
reports with web3.py against the same node.

Needs Node.js and `npm ci` at the repository root. The ``dev_node`` fixture
(tests/conftest.py) provides the node; each test uses its own funded account so
they can share one node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD

from tests.support.artifacts import load_artifact

REPO_ROOT = Path(__file__).resolve().parents[2]
JS_DIR = REPO_ROOT / "tests" / "js"
FLOW_TIMEOUT_S = 120

# Expected values fixed by the flow scripts.
INITIAL_SUPPLY = 1_000_000 * 10**18
TX_TYPE_EIP1559 = 2


def run_flow(
    script: str, rpc_url: str, private_key: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``node tests/js/<script> <rpc_url> <private_key>`` (with `env` added to the
    environment) and return its JSON summary."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (`node`) is not on PATH; it is needed for the JS client flows.")
    for package in ("ethers", "viem"):
        if not (REPO_ROOT / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"node_modules/{package} is missing: run `npm ci` at the repository root first.")
    cmd = [node, str(JS_DIR / script), rpc_url, private_key]
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=FLOW_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{script} did not finish within {FLOW_TIMEOUT_S} s\n"
            f"--- stdout ---\n{exc.stdout or ''}\n--- stderr ---\n{exc.stderr or ''}"
        )
    details = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{details}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"{script} printed nothing on stdout\n{details}"
    try:
        summary = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        pytest.fail(f"{script} did not print a JSON summary ({exc})\n{details}")
    assert isinstance(summary, dict), f"{script} printed {summary!r}, expected a JSON object"
    return summary


def cross_check(w3: Web3, summary: dict[str, Any], sender: str) -> None:
    """Check, with web3.py, the chain state a flow reports."""
    token_artifact = load_artifact("ConclaveToken")
    token_address = Web3.to_checksum_address(summary["token"])
    recipient = Web3.to_checksum_address(summary["recipient"])
    amount = int(summary["amount"])

    assert summary["chainId"] == w3.eth.chain_id
    assert summary["account"] == sender

    # The token is deployed with the artefact's runtime code.
    code = w3.eth.get_code(token_address)
    assert "0x" + bytes(code).hex() == token_artifact["deployedBytecode"]
    deploy_receipt = w3.eth.get_transaction_receipt(summary["deployTx"])
    assert deploy_receipt["status"] == 1
    assert deploy_receipt["contractAddress"] == token_address

    # The token transfer: mined, successful, EIP-1559, in the block the client saw.
    receipt = w3.eth.get_transaction_receipt(summary["transferTx"])
    assert receipt["status"] == 1
    assert receipt["type"] == TX_TYPE_EIP1559
    assert receipt["blockNumber"] == summary["blockNumber"]
    assert receipt["from"] == sender
    assert receipt["to"] == token_address
    tx = w3.eth.get_transaction(summary["transferTx"])
    assert tx["type"] == TX_TYPE_EIP1559
    assert tx["maxFeePerGas"] == int(summary["maxFeePerGas"])
    assert tx["maxPriorityFeePerGas"] == int(summary["maxPriorityFeePerGas"])

    token = w3.eth.contract(address=token_address, abi=token_artifact["abi"])
    events = token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert len(events) == 1
    assert events[0]["args"]["from"] == sender
    assert events[0]["args"]["to"] == recipient
    assert events[0]["args"]["value"] == amount

    # Balances as web3.py sees them.
    assert token.functions.balanceOf(recipient).call() == amount
    assert token.functions.totalSupply().call() == INITIAL_SUPPLY
    assert token.functions.balanceOf(sender).call() == INITIAL_SUPPLY - amount

    # The plain ether transfer.
    eth_receipt = w3.eth.get_transaction_receipt(summary["ethTransferTx"])
    assert eth_receipt["status"] == 1
    assert eth_receipt["from"] == sender
    assert w3.eth.get_balance(Web3.to_checksum_address(summary["ethRecipient"])) == int(summary["ethAmount"])


def test_ethers_flow(dev_node: Any) -> None:
    account = dev_node.accounts[1]
    summary = run_flow("ethers_flow.mjs", dev_node.rpc_url, account.key)

    assert summary["client"] == "ethers"
    assert summary["clientVersion"].startswith("6.")
    assert summary["txType"] == TX_TYPE_EIP1559
    assert summary["customError"] == "ERC20InsufficientBalance"

    cross_check(Web3(Web3.HTTPProvider(dev_node.rpc_url)), summary, account.address)


def test_viem_flow(dev_node: Any) -> None:
    account = dev_node.accounts[2]
    summary = run_flow("viem_flow.mjs", dev_node.rpc_url, account.key)

    assert summary["client"] == "viem"
    assert summary["clientVersion"].startswith("2.")
    assert summary["txType"] == "eip1559"
    assert summary["customError"] == "ERC20InsufficientBalance"
    # viem prepares each transaction with eth_fillTransaction and uses the node's
    # answer (nonce, gas, fees) instead of asking for each one apart.
    methods = summary["rpcMethods"]
    assert methods.get("eth_sendRawTransaction", 0) >= 3
    assert methods.get("eth_fillTransaction", 0) >= 3, methods
    assert "eth_estimateGas" not in methods and "eth_getTransactionCount" not in methods, methods

    cross_check(Web3(Web3.HTTPProvider(dev_node.rpc_url)), summary, account.address)
