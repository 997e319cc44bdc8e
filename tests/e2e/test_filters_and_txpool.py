"""End-to-end: polled filters (eth_newFilter and family) and the txpool_* methods, with web3.py.

The module's node seals a block every 2 seconds, so transactions wait in the pool long
enough to be seen there. Every raw result is validated against the execution-apis spec
(txpool_inspect, which the spec lacks, against geth's format).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3RPCError

from tests.e2e.chain_helpers import Signer, dev_signer, funded_signer, wait_receipt
from tests.support.devnode import DevNode, start_dev_node
from tests.support.spec import validate_result

BLOCK_TIME = 2.0
VALUE_SET_TOPIC = Web3.keccak(text="ValueSet(address,uint256,string)")
INSPECT_LINE = re.compile(r"(0x[0-9a-fA-F]{40}|contract creation): \d+ wei \+ \d+ gas × \d+ wei")


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral", "--block-time", str(int(BLOCK_TIME)))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def alice(w3: Web3, node: DevNode) -> Signer:
    return dev_signer(w3, node.accounts[0])


@pytest.fixture(scope="module")
def probe(alice: Signer) -> Any:
    contract, _ = alice.deploy("Probe")
    return contract


def value_topic(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def checked(node: DevNode, method: str, params: list[Any] | None = None) -> Any:
    """The raw result of `method`, validated against the spec."""
    result = node.result(method, params)
    validate_result(method, result)
    return result


def wait_for_new_block(w3: Web3) -> int:
    """Block until a block is sealed; the pool is then left alone for about BLOCK_TIME."""
    start = w3.eth.block_number
    deadline = time.monotonic() + 5 * BLOCK_TIME
    while (number := w3.eth.block_number) == start:
        assert time.monotonic() < deadline, "no block was sealed"
        time.sleep(0.02)
    return number


# -- filters --------------------------------------------------------------------------


def test_a_log_filter_reports_each_new_matching_log_once(
    w3: Web3, node: DevNode, alice: Signer, probe: Any
) -> None:
    before = alice.call_fn(probe.functions.set(42))  # before the filter: not a change
    log_filter = w3.eth.filter(
        {"address": probe.address, "topics": [VALUE_SET_TOPIC.to_0x_hex(), None, value_topic(42)]}
    )
    assert re.fullmatch(r"0x[1-9a-f][0-9a-f]*", log_filter.filter_id)
    wanted = alice.call_fn(probe.functions.set(42))
    alice.call_fn(probe.functions.set(7))  # another value: no match
    changes = checked(node, "eth_getFilterChanges", [log_filter.filter_id])
    assert [entry["transactionHash"] for entry in changes] == [wanted["transactionHash"].to_0x_hex()]
    assert changes[0]["topics"][2] == value_topic(42)
    assert log_filter.get_new_entries() == []  # not again
    # eth_getFilterLogs: every matching log in the filter's range (fromBlock/toBlock: latest).
    everything = w3.eth.filter(
        {"fromBlock": "earliest", "address": probe.address, "topics": [VALUE_SET_TOPIC.to_0x_hex()]}
    )
    logs = checked(node, "eth_getFilterLogs", [everything.filter_id])
    hashes = [before["transactionHash"].to_0x_hex(), wanted["transactionHash"].to_0x_hex()]
    assert [entry["transactionHash"] for entry in logs][:2] == hashes and len(logs) == 3
    assert [entry["transactionHash"] for entry in w3.eth.get_filter_logs(everything.filter_id)] == [
        HexBytes(entry["transactionHash"]) for entry in logs
    ]
    assert checked(node, "eth_getFilterChanges", [everything.filter_id]) == []
    assert checked(node, "eth_getFilterLogs", [log_filter.filter_id]) == []  # range: latest only


def test_a_block_filter_reports_new_block_hashes(w3: Web3, node: DevNode) -> None:
    block_filter = w3.eth.filter("latest")
    first = w3.eth.block_number
    wait_for_new_block(w3)
    last = wait_for_new_block(w3)
    changes = checked(node, "eth_getFilterChanges", [block_filter.filter_id])
    expected = [w3.eth.get_block(n)["hash"].to_0x_hex() for n in range(first + 1, last + 1)]
    assert changes[: len(expected)] == expected
    assert block_filter.get_new_entries() == [HexBytes(h) for h in changes[len(expected) :]]


def test_a_pending_filter_reports_sent_transactions(w3: Web3, node: DevNode, alice: Signer) -> None:
    pending_filter = w3.eth.filter("pending")
    assert checked(node, "eth_getFilterChanges", [pending_filter.filter_id]) == []
    tx_hash = alice.send(to=alice.address, value=1, gas=21_000)
    assert checked(node, "eth_getFilterChanges", [pending_filter.filter_id]) == [tx_hash.to_0x_hex()]
    assert pending_filter.get_new_entries() == []
    wait_receipt(w3, tx_hash)


def test_an_uninstalled_filter_is_not_found(w3: Web3, node: DevNode) -> None:
    filter_id = checked(node, "eth_newBlockFilter")
    assert checked(node, "eth_uninstallFilter", [filter_id]) is True
    assert w3.eth.uninstall_filter(filter_id) is False
    answer = node.rpc("eth_getFilterChanges", [filter_id])
    assert answer["error"] == {"code": -32000, "message": "filter not found"}
    with pytest.raises(Web3RPCError, match="filter not found"):
        w3.eth.get_filter_changes(filter_id)
    assert node.rpc("eth_getFilterLogs", [checked(node, "eth_newPendingTransactionFilter")])["error"] == {
        "code": -32000,
        "message": "filter not found",
    }


def test_filter_ids_differ(node: DevNode) -> None:
    ids = {checked(node, "eth_newFilter", [{"address": "0x" + "11" * 20}]) for _ in range(20)}
    assert len(ids) == 20
    for filter_id in ids:
        assert checked(node, "eth_uninstallFilter", [filter_id]) is True


# -- transaction pool -----------------------------------------------------------------


def test_txpool_shows_pending_and_queued_transactions(w3: Web3, node: DevNode, alice: Signer) -> None:
    sender = funded_signer(alice)
    signed = [sender.sign(nonce=n, to=alice.address, value=n + 1, gas=21_000) for n in (0, 1, 3)]
    wait_for_new_block(w3)
    for tx in signed:
        w3.eth.send_raw_transaction(tx.raw_transaction)
    status = checked(node, "txpool_status")
    content = checked(node, "txpool_content")
    inspect = node.result("txpool_inspect")
    mine = checked(node, "txpool_contentFrom", [sender.address])
    assert int(status["pending"], 16) >= 2 and int(status["queued"], 16) >= 1
    assert mine == {
        "pending": content["pending"][sender.address],
        "queued": content["queued"][sender.address],
    }
    assert {nonce: tx["hash"] for nonce, tx in mine["pending"].items()} == {
        "0": signed[0].hash.to_0x_hex(),
        "1": signed[1].hash.to_0x_hex(),
    }
    assert {nonce: tx["hash"] for nonce, tx in mine["queued"].items()} == {"3": signed[2].hash.to_0x_hex()}
    for tx in mine["pending"].values():
        assert tx["from"] == sender.address and tx["blockHash"] is None
    assert set(inspect) == {"pending", "queued"}
    assert set(inspect["pending"][sender.address]) == {"0", "1"}
    for group in inspect.values():
        for by_nonce in group.values():
            assert all(INSPECT_LINE.fullmatch(line) for line in by_nonce.values()), by_nonce
    gas_price = int(content["queued"][sender.address]["3"]["maxFeePerGas"], 16)
    assert inspect["queued"][sender.address]["3"] == f"{alice.address}: 4 wei + 21000 gas × {gas_price} wei"
    # Once sealed, the ready ones leave the pool; the one after the gap keeps waiting.
    wait_receipt(w3, signed[1].hash)
    after = checked(node, "txpool_contentFrom", [sender.address])
    assert after["pending"] == {} and list(after["queued"]) == ["3"]
    assert checked(node, "txpool_contentFrom", ["0x" + "00" * 20]) == {"pending": {}, "queued": {}}
