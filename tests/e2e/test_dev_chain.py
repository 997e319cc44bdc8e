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


def test_state_patches_and_time_travel_through_web3_and_the_ledger_still_verifies(tmp_path: Path) -> None:
    node = start_dev_node("--data-dir", str(tmp_path))
    try:
        w3 = connect(node)
        rich, contract = fresh_account().address, fresh_account().address
        assert node.result("hardhat_setBalance", [rich, hex(10**24)]) is True
        assert w3.eth.get_balance(rich) == 10**24
        runtime = "0x600554600052602060" + "00f3"  # returns storage slot 5
        node.result("anvil_setCode", [contract, runtime])
        node.result("anvil_setStorageAt", [contract, "0x5", "0x" + "00" * 31 + "2a"])
        assert int.from_bytes(w3.eth.call({"to": contract}), "big") == 42
        node.result("hardhat_setNonce", [rich, "0x7"])
        assert w3.eth.get_transaction_count(rich) == 7

        latest = w3.eth.get_block("latest")["timestamp"]
        node.result("evm_setNextBlockTimestamp", [hex(latest + 86_400)])
        node.result("hardhat_mine", ["0x1", "0x1"])
        assert w3.eth.get_block("latest")["timestamp"] == latest + 86_400
        refused = node.rpc("evm_setNextBlockTimestamp", [hex(latest)])["error"]
        assert refused["code"] == -32000 and "not after the latest block" in refused["message"]
        head = w3.eth.block_number
    finally:
        assert node.stop() == 0
    verified = run_conclave("ledger", "verify", "--data-dir", str(tmp_path), "--json", timeout=120)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["ok"] and report["head"] == head, verified
