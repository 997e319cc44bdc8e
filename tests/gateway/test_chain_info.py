"""eth_config, eth_capabilities and the block access lists on an in-process node."""

from __future__ import annotations

import zlib
from typing import Any

import rlp
from eth_utils import to_checksum_address

from gateway.node import Node
from tests.evm_runtime.chainkit import ACCOUNTS, recipient, sign
from tests.gateway.inprocess import COINBASE, call, error_of, request

CAROL = ACCOUNTS[2]
DEV_SENDER = ACCOUNTS[0].address
"""A dev account (eth_sendTransaction signs with it)."""


def test_config_is_prague_from_genesis_with_no_fork_to_come(shared_node: Node) -> None:
    config = call(shared_node, "eth_config")
    assert config["next"] is None and config["last"] is None
    current = config["current"]
    assert current["activationTime"] == 0
    assert current["chainId"] == call(shared_node, "eth_chainId")
    genesis_hash = bytes.fromhex(call(shared_node, "eth_getBlockByNumber", "0x0", False)["hash"][2:])
    assert current["forkId"] == "0x" + zlib.crc32(genesis_hash).to_bytes(4, "big").hex()
    assert current["blobSchedule"] == {"baseFeeUpdateFraction": 5_007_716, "max": 9, "target": 6}
    assert len(current["precompiles"]) == 17
    assert current["precompiles"]["ECREC"] == "0x" + "00" * 19 + "01"
    assert current["precompiles"]["BLS12_MAP_FP2_TO_G2"] == "0x" + "00" * 19 + "11"
    # No governance in this chain's genesis, and none of Prague's system calls are made.
    assert current["systemContracts"] == {}


def test_config_lists_the_governance_contract_of_a_governed_chain(dev: Node) -> None:
    system = call(dev, "eth_config")["current"]["systemContracts"]
    assert system == {"CONCLAVE_GOVERNANCE_ADDRESS": "0x00000000000000000000000000000000000c0c1e"}


def test_config_takes_no_parameters(shared_node: Node) -> None:
    assert error_of(shared_node, request("eth_config", ["latest"]))["code"] == -32602


def test_capabilities_keep_everything_from_genesis(node: Node) -> None:
    node.ordering.seal()
    capabilities = call(node, "eth_capabilities")
    latest = call(node, "eth_getBlockByNumber", "latest", False)
    assert capabilities["head"] == {"number": latest["number"], "hash": latest["hash"]}
    resources = {"state", "tx", "logs", "receipts", "blocks", "stateproofs"}
    assert set(capabilities) == resources | {"head"}
    for resource in resources:
        assert capabilities[resource] == {"disabled": False, "oldestBlock": "0x0"}


def _transfer_block(node: Node) -> dict[str, Any]:
    call(node, "eth_sendRawTransaction", "0x" + sign(CAROL, nonce=0, to=recipient(7), value=5).hex())
    node.ordering.seal()
    return call(node, "eth_getBlockByNumber", "latest", False)


def test_a_transfer_block_lists_sender_recipient_and_coinbase(node: Node) -> None:
    block = _transfer_block(node)
    accesses = call(node, "eth_getBlockAccessList", block["number"])
    by_address = {entry["address"]: entry for entry in accesses}
    assert list(by_address) == sorted(by_address, key=lambda text: bytes.fromhex(text[2:]))
    assert set(by_address) == {CAROL.address, recipient(7), COINBASE}
    sender = by_address[CAROL.address]
    assert sender["nonceChanges"] == [{"index": "0x1", "value": "0x1"}]
    assert sender["balanceChanges"] == [
        {"index": "0x1", "value": call(node, "eth_getBalance", CAROL.address, "latest")}
    ]
    assert by_address[recipient(7)]["balanceChanges"] == [{"index": "0x1", "value": "0x5"}]
    assert sender["storageChanges"] == sender["storageReads"] == sender["codeChanges"] == []
    # Named by hash, by tag or by number, it is the same list.
    assert call(node, "eth_getBlockAccessList", block["hash"]) == accesses
    assert call(node, "eth_getBlockAccessList", "latest") == accesses


def test_the_raw_list_is_the_rlp_of_the_json_one(node: Node) -> None:
    block = _transfer_block(node)
    accesses = call(node, "eth_getBlockAccessList", block["number"])
    raw = bytes.fromhex(call(node, "debug_getRawBlockAccessList", block["number"])[2:])
    decoded = rlp.decode(raw)
    assert [to_checksum_address(entry[0]) for entry in decoded] == [entry["address"] for entry in accesses]
    for entry, json_entry in zip(decoded, accesses, strict=True):
        balances = [[int.from_bytes(i, "big"), int.from_bytes(v, "big")] for i, v in entry[3]]
        assert balances == [[int(c["index"], 16), int(c["value"], 16)] for c in json_entry["balanceChanges"]]


def test_storage_writes_and_reads_of_a_contract_call(node: Node) -> None:
    # Runtime code: SSTORE(0, CALLVALUE), SLOAD(1).
    runtime = bytes.fromhex("346000556001545000")
    init = bytes.fromhex(f"60{len(runtime):02x}600c60003960{len(runtime):02x}6000f3") + runtime
    call(node, "eth_sendRawTransaction", "0x" + sign(CAROL, nonce=0, to=None, data=init, gas=100_000).hex())
    node.ordering.seal()
    created = call(
        node,
        "eth_getTransactionReceipt",
        call(node, "eth_getBlockByNumber", "latest", True)["transactions"][0]["hash"],
    )["contractAddress"]
    creation = {e["address"]: e for e in call(node, "eth_getBlockAccessList", "latest")}[created]
    assert creation["codeChanges"] == [{"index": "0x1", "code": "0x" + runtime.hex()}]
    assert creation["nonceChanges"] == [{"index": "0x1", "value": "0x1"}]
    call(node, "eth_sendRawTransaction", "0x" + sign(CAROL, nonce=1, to=created, value=3, gas=100_000).hex())
    node.ordering.seal()
    contract = {e["address"]: e for e in call(node, "eth_getBlockAccessList", "latest")}[created]
    assert contract["storageChanges"] == [
        {"key": "0x" + "00" * 32, "changes": [{"index": "0x1", "value": "0x" + "00" * 31 + "03"}]}
    ]
    assert contract["storageReads"] == ["0x" + "00" * 31 + "01"]
    assert contract["balanceChanges"] == [{"index": "0x1", "value": "0x3"}]


def test_genesis_and_empty_blocks_have_empty_lists(node: Node) -> None:
    assert call(node, "eth_getBlockAccessList", "earliest") == []
    assert call(node, "debug_getRawBlockAccessList", "0x0") == "0xc0"
    node.ordering.seal()
    assert call(node, "eth_getBlockAccessList", "latest") == []


def test_unknown_blocks_and_bad_parameters(shared_node: Node) -> None:
    assert call(shared_node, "eth_getBlockAccessList", "0x99") is None
    assert call(shared_node, "eth_getBlockAccessList", "0x" + "ab" * 32) is None
    assert error_of(shared_node, request("debug_getRawBlockAccessList", ["0x99"]))["code"] == -32001
    for method in ("eth_getBlockAccessList", "debug_getRawBlockAccessList"):
        error = error_of(shared_node, request(method, ["newest"]))
        assert error["code"] == -32602 and "block" in error["message"], error
        assert error_of(shared_node, request(method, []))["code"] == -32602


def test_permission_checks_are_not_listed_in_a_governed_chain(dev: Node) -> None:
    call(dev, "eth_sendTransaction", {"from": DEV_SENDER, "to": recipient(8), "value": "0x1"})
    dev.ordering.seal()
    listed = {entry["address"] for entry in call(dev, "eth_getBlockAccessList", "latest")}
    assert listed == {DEV_SENDER, recipient(8), COINBASE}
