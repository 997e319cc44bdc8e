"""End-to-end: a dev node's unlocked accounts, time travel and snapshots, through web3.py."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

from tests.e2e.chain_helpers import connect, fresh_account, run_conclave, wait_receipt
from tests.support.devnode import start_dev_node


def test_web3_sends_and_signs_with_the_unlocked_dev_accounts() -> None:
    node = start_dev_node("--ephemeral")
    try:
        w3 = connect(node)
        alice, bob = w3.eth.accounts[:2]
        target = fresh_account().address
        receipt = wait_receipt(w3, w3.eth.send_transaction({"from": alice, "to": target, "value": 12345}))
        assert receipt["status"] == 1 and w3.eth.get_balance(target) == 12345
        assert w3.eth.get_transaction(receipt["transactionHash"])["type"] == 2

        typed = {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}],
                "Ok": [{"name": "v", "type": "uint8"}],
            },
            "primaryType": "Ok",
            "domain": {"name": "Conclave"},
            "message": {"v": 1},
        }
        signature = node.result("eth_signTypedData_v4", [bob, json.dumps(typed)])
        assert Account.recover_message(encode_typed_data(full_message=typed), signature=signature) == bob
    finally:
        node.stop()


def test_snapshot_revert_survives_a_restart_and_the_ledger_still_verifies(tmp_path: Path) -> None:
    node = start_dev_node("--data-dir", str(tmp_path))
    w3: Web3 = connect(node)
    alice = w3.eth.accounts[0]
    target = fresh_account().address
    snapshot = node.result("evm_snapshot")
    head = w3.eth.block_number
    wait_receipt(w3, w3.eth.send_transaction({"from": alice, "to": target, "value": 1}))
    node.result("evm_increaseTime", [3600])
    node.result("evm_mine")
    assert w3.eth.get_balance(target) == 1
    assert node.result("evm_revert", [snapshot]) is True
    assert w3.eth.block_number == head and w3.eth.get_balance(target) == 0
    assert node.stop() == 0

    node = start_dev_node("--data-dir", str(tmp_path))
    try:
        w3 = connect(node)
        assert w3.eth.block_number == head and w3.eth.get_balance(target) == 0
        receipt = wait_receipt(w3, w3.eth.send_transaction({"from": alice, "to": target, "value": 2}))
        assert receipt["blockNumber"] == head + 1
    finally:
        node.stop()
    verified = run_conclave("ledger", "verify", "--data-dir", str(tmp_path), "--json", timeout=120)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified
