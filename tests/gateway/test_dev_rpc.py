"""Dev-chain methods on an in-process dev node: signing with dev keys, time, snapshots."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from enclave.sealed_state import node_ledger_secrets
from enclave.verification import verify_ledger
from gateway.node import Node
from gateway.rpc import METHODS
from tests.evm_runtime.chainkit import ACCOUNTS, recipient
from tests.gateway.inprocess import ALICE, BOB, call, error_of, make_node, request

TYPED = {
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
        "Order": [{"name": "item", "type": "string"}, {"name": "quantity", "type": "uint256"}],
    },
    "primaryType": "Order",
    "domain": {"name": "Conclave", "chainId": 1337},
    "message": {"item": "bolts", "quantity": 12},
}


DEV_METHODS = sorted(name for name, method in METHODS.items() if method.dev_only)


@pytest.mark.parametrize("method", DEV_METHODS)
def test_a_production_node_does_not_serve_dev_methods(shared_node: Node, method: str) -> None:
    assert error_of(shared_node, request(method, []))["code"] == -32601


def test_the_dev_methods_are_the_expected_ones() -> None:
    assert {
        "eth_sendTransaction",
        "eth_sign",
        "personal_sign",
        "eth_signTypedData_v4",
        "evm_snapshot",
        "hardhat_setBalance",
        "anvil_setBalance",
        "hardhat_setCode",
        "hardhat_setNonce",
        "hardhat_setStorageAt",
    } <= set(DEV_METHODS)


def test_send_transaction_fills_nonce_gas_and_fees(dev: Node) -> None:
    tx_hash = call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(3), "value": "0x5"})
    pending = call(dev, "eth_getTransactionByHash", tx_hash)
    assert pending["from"] == ALICE.address and pending["nonce"] == "0x0" and pending["type"] == "0x2"
    assert pending["gas"] == hex(21_000) and int(pending["maxFeePerGas"], 16) > int(
        pending["maxPriorityFeePerGas"], 16
    )
    second = call(
        dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(3), "gasPrice": "0x77359400"}
    )
    assert call(dev, "eth_getTransactionByHash", second)["nonce"] == "0x1"
    assert call(dev, "eth_getTransactionByHash", second)["type"] == "0x0"
    dev.ordering.seal()
    assert call(dev, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"


def test_signing_needs_an_unlocked_account(dev: Node) -> None:
    stranger = ACCOUNTS[4].address
    error = error_of(dev, request("eth_sendTransaction", [{"from": stranger, "to": recipient(1)}]))
    assert error["code"] == -32000 and "unknown account" in error["message"]
    missing = error_of(dev, request("eth_sendTransaction", [{"to": recipient(1)}]))
    assert 'missing "from"' in missing["message"]
    assert "unknown account" in error_of(dev, request("eth_sign", [stranger, "0x01"]))["message"]


def test_sign_transaction_returns_a_transaction_that_recovers(dev: Node) -> None:
    signed = call(dev, "eth_signTransaction", {"from": BOB.address, "to": recipient(2), "value": "0x1"})
    assert Account.recover_transaction(signed["raw"]) == BOB.address
    assert signed["tx"]["from"] == BOB.address and signed["tx"]["blockHash"] is None


def test_messages_and_typed_data_recover_to_the_signer(dev: Node) -> None:
    signature = call(dev, "eth_sign", ALICE.address, "0x68656c6c6f")
    assert Account.recover_message(encode_defunct(primitive=b"hello"), signature=signature) == ALICE.address
    personal = call(dev, "personal_sign", "0x68656c6c6f", ALICE.address)
    assert personal == signature
    typed = call(dev, "eth_signTypedData_v4", BOB.address, TYPED)
    assert Account.recover_message(encode_typed_data(full_message=TYPED), signature=typed) == BOB.address
    assert call(dev, "eth_signTypedData_v4", BOB.address, json.dumps(TYPED)) == typed


@pytest.mark.parametrize("bad", [{"types": {}}, "not json", [1], {**TYPED, "primaryType": "Missing"}])
def test_bad_typed_data_is_refused(dev: Node, bad: object) -> None:
    error = error_of(dev, request("eth_signTypedData_v4", [ALICE.address, bad]))
    assert (error["code"], "typed data" in error["message"]) in ((-32602, True), (-32000, True))


def test_time_travel(dev: Node) -> None:
    start = int(call(dev, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    call(dev, "evm_setNextBlockTimestamp", start + 1_000)
    call(dev, "evm_mine")
    assert int(call(dev, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) == start + 1_000
    call(dev, "evm_mine", start + 5_000)
    assert int(call(dev, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) == start + 5_000
    past = error_of(dev, request("evm_setNextBlockTimestamp", [start]))
    assert past["code"] == -32000 and "not after the latest block" in past["message"]
    call(dev, "evm_increaseTime", 10**9)
    call(dev, "evm_mine")
    assert int(call(dev, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) >= 10**9
    assert call(dev, "hardhat_mine", "0x3", "0x10") is True
    blocks = [call(dev, "eth_getBlockByNumber", hex(n), False) for n in range(4, 7)]
    times = [int(block["timestamp"], 16) for block in blocks]
    assert [later - earlier for earlier, later in zip(times, times[1:], strict=False)] == [16, 16]


def test_snapshots_revert_the_chain(dev: Node) -> None:
    before = call(dev, "eth_getBalance", ALICE.address)
    first = call(dev, "evm_snapshot")
    call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(4), "value": "0x10"})
    dev.ordering.seal()
    second = call(dev, "evm_snapshot")
    call(dev, "evm_mine")
    assert call(dev, "eth_blockNumber") == "0x2"
    assert call(dev, "evm_revert", first) is True
    assert call(dev, "eth_blockNumber") == "0x0"
    assert call(dev, "eth_getBalance", ALICE.address) == before
    assert call(dev, "evm_revert", second) is False  # later snapshots are gone with it
    assert call(dev, "evm_revert", "0x99") is False
    call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(4), "value": "0x1"})
    dev.ordering.seal()
    assert call(dev, "eth_blockNumber") == "0x1"


def test_time_increase_as_hardhat_helpers_do_it(dev: Node) -> None:
    """time.increase(n): evm_setNextBlockTimestamp(latest + n), then hardhat_mine(1, 1)."""
    target = int(time.time()) + 3_600  # the in-process chain starts at time 1,000
    call(dev, "evm_setNextBlockTimestamp", hex(target))
    assert call(dev, "hardhat_mine", "0x1", "0x1") is True
    mined = int(call(dev, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    assert mined == target
    call(dev, "evm_mine")  # later blocks go on from there, not from the wall clock
    assert int(call(dev, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) in range(
        mined + 1, mined + 60
    )


def test_revert_restores_the_time_offset(dev: Node) -> None:
    snapshot = call(dev, "evm_snapshot")
    call(dev, "evm_increaseTime", 10**8)
    call(dev, "evm_setNextBlockTimestamp", 2 * 10**9)
    assert call(dev, "evm_revert", snapshot) is True
    call(dev, "evm_mine")
    assert abs(int(call(dev, "eth_getBlockByNumber", "latest", False)["timestamp"], 16) - time.time()) < 600


@pytest.mark.parametrize("prefix", ["hardhat", "anvil"])
def test_set_balance_seals_a_block_whose_state_carries_it(dev: Node, prefix: str) -> None:
    stranger = recipient(7)
    answer = call(dev, f"{prefix}_setBalance", stranger, hex(10**30))
    assert answer is (True if prefix == "hardhat" else None)
    assert call(dev, "eth_getBalance", stranger) == hex(10**30)
    assert call(dev, "eth_getBalance", stranger, "0x0") == "0x0"  # the past is unchanged
    block = call(dev, "eth_getBlockByNumber", "latest", False)
    assert block["number"] == "0x1" and block["transactions"] == [] and len(block["extraData"]) == 66
    call(dev, f"{prefix}_setBalance", ALICE.address, "0x0")
    assert call(dev, "eth_getBalance", ALICE.address) == "0x0"


def test_set_code_nonce_and_storage(dev: Node) -> None:
    account = recipient(8)
    # A contract that returns its storage slot 5: PUSH1 5 SLOAD PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    code = "0x600554600052602060" + "00f3"
    assert call(dev, "hardhat_setCode", account, code) is True
    word = "0x" + "ab" * 32
    assert call(dev, "hardhat_setStorageAt", account, "0x5", word) is True
    assert call(dev, "eth_getCode", account) == code
    assert call(dev, "eth_getStorageAt", account, "0x5") == word
    assert call(dev, "eth_call", {"to": account}) == word
    assert call(dev, "hardhat_setNonce", ALICE.address, "0x2a") is True
    assert call(dev, "eth_getTransactionCount", ALICE.address) == "0x2a"
    tx_hash = call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(3)})
    assert call(dev, "eth_getTransactionByHash", tx_hash)["nonce"] == "0x2a"


def test_a_raised_nonce_drops_the_waiting_transactions_it_used(dev: Node) -> None:
    waiting = call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(3)})
    call(dev, "hardhat_setNonce", ALICE.address, "0x5")
    assert call(dev, "eth_getTransactionByHash", waiting) is None
    assert call(dev, "txpool_status")["pending"] == "0x0"


@pytest.mark.parametrize(
    ("method", "params", "words"),
    [
        ("hardhat_setBalance", [ALICE.address, hex(2**256)], "balance"),
        ("hardhat_setBalance", ["0x1234", "0x1"], "address"),
        ("hardhat_setNonce", [ALICE.address, hex(2**64)], "nonce"),
        ("hardhat_setCode", [ALICE.address, "0x" + "00" * 24_577], "24576"),
        ("hardhat_setStorageAt", [ALICE.address, "0x1", "0x01"], "value"),
        ("anvil_setStorageAt", [ALICE.address, "0x" + "1" * 65, "0x" + "00" * 32], "slot"),
    ],
)
def test_bad_state_changes_are_refused_and_seal_nothing(
    dev: Node, method: str, params: list[str], words: str
) -> None:
    error = error_of(dev, request(method, params))
    assert error["code"] in (-32602, -32000) and words in error["message"]
    assert call(dev, "eth_blockNumber") == "0x0"


def test_patched_chain_is_verified_and_the_patch_is_replayed(tmp_path: Path) -> None:
    dev = make_node(dev_mode=True, enclave_dir=tmp_path)  # verifying unseals the state with its keys
    call(dev, "hardhat_setBalance", recipient(9), "0x64")
    call(dev, "hardhat_setStorageAt", recipient(9), "0x0", "0x" + "01" * 32)
    call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": recipient(9), "value": "0x1"})
    dev.ordering.seal()
    report = verify_ledger(dev.store, dev.params.chain_id, node_ledger_secrets(tmp_path))
    assert report.ok and report.blocks == 4, report.discrepancies
    assert call(dev, "eth_getBalance", recipient(9)) == "0x65"
