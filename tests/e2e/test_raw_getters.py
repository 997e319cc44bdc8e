"""End-to-end: debug_getRaw* answer the bytes the block's hash and roots commit to."""

from __future__ import annotations

import rlp
from eth_account import Account
from eth_hash.auto import keccak
from trie import HexaryTrie

from tests.e2e.chain_helpers import Signer, connect
from tests.support.devnode import DevNode
from tests.support.spec import validate_result


def _root(items: list[bytes]) -> bytes:
    trie = HexaryTrie({})
    for index, item in enumerate(items):
        trie[rlp.encode(index)] = item
    return bytes(trie.root_hash)


def test_raw_bytes_match_the_hashes_and_roots(node: DevNode) -> None:
    w3 = connect(node)
    signer = Signer(w3, node.accounts[5].key)
    probe, _ = signer.deploy("Probe")
    receipt = signer.call_fn(probe.functions.emitMany(2))
    number = hex(receipt["blockNumber"])
    block = w3.eth.get_block(receipt["blockNumber"])

    header = node.result("debug_getRawHeader", [number])
    validate_result("debug_getRawHeader", header)
    assert keccak(bytes.fromhex(header[2:])) == bytes(block["hash"])

    raw_tx = node.result("debug_getRawTransaction", [receipt["transactionHash"].to_0x_hex()])
    validate_result("debug_getRawTransaction", raw_tx)
    assert Account.recover_transaction(raw_tx) == signer.address
    assert keccak(bytes.fromhex(raw_tx[2:])) == bytes(receipt["transactionHash"])

    receipts = node.result("debug_getRawReceipts", [number])
    validate_result("debug_getRawReceipts", receipts)
    assert _root([bytes.fromhex(r[2:]) for r in receipts]) == bytes(block["receiptsRoot"])

    raw_block = node.result("debug_getRawBlock", [number])
    validate_result("debug_getRawBlock", raw_block)
    decoded_header, transactions, uncles, withdrawals = rlp.decode(bytes.fromhex(raw_block[2:]))
    assert rlp.encode(decoded_header) == bytes.fromhex(header[2:])
    assert (uncles, withdrawals) == ([], []) and len(transactions) == len(block["transactions"])
    assert int(block["size"]) == len(raw_block) // 2 - 1

    assert node.result("debug_getBadBlocks") == []


def test_unknown_things_are_not_found(node: DevNode) -> None:
    missing = node.rpc("debug_getRawTransaction", ["0x" + "ab" * 32])["error"]
    assert missing["code"] == -32001 and "not found" in missing["message"]
    assert node.rpc("debug_getRawHeader", ["0xffffff"])["error"]["code"] == -32001
