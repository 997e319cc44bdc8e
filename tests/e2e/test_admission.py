"""End-to-end: what the node refuses, with which JSON-RPC error, and that it keeps nothing refused.

Every refusal must be a JSON-RPC error with the code of the execution-apis error groups
and a message that says what is wrong; afterwards the transaction's hash is unknown and
the sender's nonce has not moved. Each test then gets a valid transaction with the same
nonce mined, which proves the refused one did not take its place.

Plain JSON-RPC errors over HTTP (parse errors, invalid requests, unknown methods, bad
parameters, oversized bodies, batches) are checked at the end.

Uses the shared dev node with dev account 5 (and fresh accounts funded from it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import rlp
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

from tests.e2e.chain_helpers import (
    ETHER,
    GWEI,
    Signer,
    connect,
    dev_signer,
    fresh_account,
    funded_signer,
    next_base_fee,
    wait_receipt,
)
from tests.support.devnode import DevNode, start_dev_node

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_TRANSACTION_BYTES = 128 * 1024
MAX_BODY_BYTES = 5 * 1024 * 1024
BLOCK_GAS_LIMIT = 30_000_000

INVALID_INPUT = -32000
TRANSACTION_REJECTED = -32003


@pytest.fixture(scope="module")
def funder(w3: Web3, node: Any) -> Signer:
    return dev_signer(w3, node.accounts[5])


@pytest.fixture
def sender(funder: Signer) -> Signer:
    """A new account with 10 ETH, so nonces and balances are this test's alone."""
    return funded_signer(funder, 10)


def send_raw(node: Any, raw: bytes) -> dict[str, Any]:
    return node.rpc("eth_sendRawTransaction", [HexBytes(raw).to_0x_hex()])


def assert_refused(
    node: Any,
    raw: bytes,
    code: int | tuple[int, ...],
    *phrases: str,
    sender: str | None = None,
) -> dict[str, Any]:
    """`raw` is refused with `code` and a message holding every phrase; nothing is kept."""
    nonces = None
    if sender is not None:
        nonces = [node.result("eth_getTransactionCount", [sender, tag]) for tag in ("latest", "pending")]
    response = send_raw(node, raw)
    assert "result" not in response, f"accepted, expected a refusal with {code}: {response}"
    error = response["error"]
    codes = code if isinstance(code, tuple) else (code,)
    assert error["code"] in codes, f"expected code {code}, got {error}"
    message = error["message"].lower()
    for phrase in phrases:
        assert phrase.lower() in message, f"the message should mention {phrase!r}: {error['message']!r}"
    tx_hash = Web3.keccak(raw).to_0x_hex()
    assert node.result("eth_getTransactionByHash", [tx_hash]) is None, "a refused transaction is known"
    assert node.result("eth_getTransactionReceipt", [tx_hash]) is None
    if sender is not None:
        after = [node.result("eth_getTransactionCount", [sender, tag]) for tag in ("latest", "pending")]
        assert after == nonces, f"nonce moved after a refusal: {nonces} -> {after}"
    return error


def mine_in_its_place(node: Any, signer: Signer, refused: list[bytes], **fields: Any) -> Any:
    """Mine a valid transaction with the next nonce; the refused ones stay unknown."""
    receipt = signer.transact(to=fresh_account().address, value=1, gas=21_000, **fields)
    assert receipt["status"] == 1
    block = signer.w3.eth.get_block(receipt["blockNumber"])
    for raw in refused:
        tx_hash = Web3.keccak(raw)
        assert tx_hash not in block["transactions"]
        assert node.result("eth_getTransactionByHash", [tx_hash.to_0x_hex()]) is None
    return receipt


def resign(raw: bytes, **changes: int) -> bytes:
    """Re-encode a signed EIP-1559 transaction with some signature fields changed."""
    assert raw[0] == 2
    fields = rlp.decode(raw[1:])
    names = ["y_parity", "r", "s"]
    for name, value in changes.items():
        fields[9 + names.index(name)] = rlp.sedes.big_endian_int.serialize(value)
    return b"\x02" + rlp.encode(fields)


def signature_of(raw: bytes) -> tuple[int, int, int]:
    fields = rlp.decode(raw[1:])
    return tuple(int.from_bytes(f, "big") for f in fields[9:12])  # type: ignore[return-value]


# -- stateless refusals ----------------------------------------------------------------


def test_oversized_transaction(node: Any, sender: Signer) -> None:
    data = b"\x01" * (MAX_TRANSACTION_BYTES + 1)
    raw = sender.sign(to=fresh_account().address, data=data, gas=3_000_000).raw_transaction
    assert len(raw) > MAX_TRANSACTION_BYTES
    assert_refused(node, raw, INVALID_INPUT, "oversized", str(MAX_TRANSACTION_BYTES), sender=sender.address)
    mine_in_its_place(node, sender, [raw])


def test_just_under_the_size_limit_is_admitted(node: Any, sender: Signer) -> None:
    data = b"\x01" * (MAX_TRANSACTION_BYTES - 200)
    signed = sender.sign(to=fresh_account().address, data=data, gas=3_000_000)
    assert len(signed.raw_transaction) <= MAX_TRANSACTION_BYTES
    receipt = wait_receipt(sender.w3, sender.w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 1


@pytest.mark.parametrize(
    "raw",
    [
        bytes.fromhex("f8ff00"),  # a list claiming 255 bytes, holding one
        bytes.fromhex("c0"),  # an empty list: no legacy fields
        bytes.fromhex("02c0"),  # a typed transaction with no fields
        bytes.fromhex("02f8"),  # truncated
        bytes.fromhex("8180"),  # a byte string, not a transaction
        b"\x02" + rlp.encode([1, 2, 3]),  # too few fields
    ],
    ids=["overlong-length", "empty-list", "typed-empty", "truncated", "byte-string", "too-few-fields"],
)
def test_undecodable_rlp(node: Any, raw: bytes) -> None:
    error = assert_refused(node, raw, INVALID_INPUT)
    message = error["message"].lower()
    assert "undecodable" in message or "decode" in message or "invalid" in message, error


def test_non_canonical_encoding_is_refused(node: Any, sender: Signer) -> None:
    raw = sender.sign(to=fresh_account().address, value=1, gas=21_000).raw_transaction
    fields = rlp.decode(raw[1:])
    fields[1] = b"\x00" + fields[1] if fields[1] else b"\x00"  # a nonce with a leading zero byte
    bad = b"\x02" + rlp.encode(fields)
    assert_refused(node, bad, INVALID_INPUT, sender=sender.address)
    mine_in_its_place(node, sender, [bad])


def test_unsupported_and_unknown_types(node: Any, sender: Signer) -> None:
    raw = sender.sign(to=fresh_account().address, value=1, gas=21_000).raw_transaction
    blob = b"\x03" + raw[1:]
    assert_refused(node, blob, TRANSACTION_REJECTED, "blob", sender=sender.address)
    unknown = b"\x05" + raw[1:]
    assert_refused(node, unknown, TRANSACTION_REJECTED, "type", sender=sender.address)
    mine_in_its_place(node, sender, [blob, unknown])


def test_empty_and_non_hex_transactions(node: Any) -> None:
    response = node.rpc("eth_sendRawTransaction", ["0x"])
    assert response["error"]["code"] == INVALID_INPUT, response
    assert "empty" in response["error"]["message"]
    for param in ("0xzz", "f86b", 42, None):
        response = node.rpc("eth_sendRawTransaction", [param])
        assert response["error"]["code"] == -32602, response
        assert "transaction" in response["error"]["message"], response


def test_bad_signatures(node: Any, sender: Signer) -> None:
    raw = sender.sign(to=fresh_account().address, value=1, gas=21_000).raw_transaction
    parity, r, s = signature_of(raw)
    refused = []
    for changes in (
        {"s": SECP256K1_N - s},  # high s (EIP-2)
        {"r": 0},
        {"s": 0},
        {"r": SECP256K1_N},
        {"y_parity": 2},
    ):
        bad = resign(raw, **changes)
        assert_refused(node, bad, INVALID_INPUT, "signature", sender=sender.address)
        refused.append(bad)
    # Flipped bytes of r / s: either no key recovers (invalid signature) or another,
    # empty account does (so it cannot pay). Either way: refused, nothing kept.
    for changes in ({"r": r ^ ((1 << 256) - 1)}, {"s": s ^ 0xFF}, {"r": r ^ (0xFF << 64)}):
        bad = resign(raw, **changes)
        error = assert_refused(node, bad, (INVALID_INPUT, 809), sender=sender.address)
        assert "signature" in error["message"] or "insufficient funds" in error["message"], error
        refused.append(bad)
    mine_in_its_place(node, sender, refused)


def test_wrong_chain_id(node: Any, sender: Signer) -> None:
    refused = []
    for fields in ({"type": 2}, {"type": 0}, {"type": 1, "accessList": []}):
        raw = sender.sign(
            to=fresh_account().address, value=1, gas=21_000, chainId=1, **fields
        ).raw_transaction
        assert_refused(node, raw, INVALID_INPUT, "chain id", str(node.chain_id), sender=sender.address)
        refused.append(raw)
    mine_in_its_place(node, sender, refused)


def test_unprotected_legacy_transaction(node: Any, sender: Signer) -> None:
    tx = sender.fill(to=fresh_account().address, value=1, gas=21_000, type=0)
    del tx["chainId"]
    signed = sender.account.sign_transaction(tx)
    assert signed.v in (27, 28)
    assert_refused(node, signed.raw_transaction, INVALID_INPUT, "eip-155", sender=sender.address)
    mine_in_its_place(node, sender, [signed.raw_transaction])


def test_intrinsic_gas_too_low(node: Any, sender: Signer) -> None:
    refused = []
    for fields in ({"gas": 20_999}, {"gas": 21_000, "data": b"\x01" * 10}, {"gas": 0}):
        raw = sender.sign(to=fresh_account().address, value=1, **fields).raw_transaction
        assert_refused(node, raw, 800, "intrinsic gas too low", sender=sender.address)
        refused.append(raw)
    # Contract creation costs 53,000 at least.
    raw = sender.sign(data=b"\x00", gas=50_000).raw_transaction
    assert_refused(node, raw, 800, "intrinsic gas", sender=sender.address)
    refused.append(raw)
    mine_in_its_place(node, sender, refused)


def test_priority_fee_above_max_fee(node: Any, sender: Signer) -> None:
    base = next_base_fee(sender.w3)
    raw = sender.sign(
        to=fresh_account().address,
        value=1,
        gas=21_000,
        maxFeePerGas=base + GWEI,
        maxPriorityFeePerGas=base + GWEI + 1,
    ).raw_transaction
    assert_refused(node, raw, 804, "priority fee", "max fee", sender=sender.address)
    mine_in_its_place(node, sender, [raw])


# -- refusals against the state --------------------------------------------------------


def test_nonce_too_low(node: Any, sender: Signer) -> None:
    first = sender.sign(to=fresh_account().address, value=1, gas=21_000)
    assert wait_receipt(sender.w3, sender.w3.eth.send_raw_transaction(first.raw_transaction))["status"] == 1
    raw = sender.sign(nonce=0, to=fresh_account().address, value=2, gas=21_000).raw_transaction
    error = assert_refused(node, raw, 1, "nonce too low", sender=sender.address)
    assert "next nonce 1" in error["message"]
    # Sending the mined transaction again is refused as well (it is not mined twice).
    response = send_raw(node, first.raw_transaction)
    assert response.get("error", {}).get("code") in (1, 1000), response
    mine_in_its_place(node, sender, [raw])


def test_nonce_too_far_ahead(node: Any, sender: Signer) -> None:
    raw = sender.sign(nonce=5_000, to=fresh_account().address, value=1, gas=21_000).raw_transaction
    assert_refused(node, raw, 2, "nonce too high", sender=sender.address)
    mine_in_its_place(node, sender, [raw])


def test_insufficient_funds(node: Any, sender: Signer) -> None:
    empty = Signer(sender.w3, Account.create())
    raw = empty.sign(nonce=0, to=sender.address, value=1, gas=21_000).raw_transaction
    assert_refused(node, raw, 809, "insufficient funds", sender=empty.address)
    # Value above the balance, and gas * fee above the balance.
    too_much = sender.sign(to=fresh_account().address, value=11 * ETHER, gas=21_000).raw_transaction
    assert_refused(node, too_much, 809, "insufficient funds", sender=sender.address)
    costly = sender.sign(
        to=fresh_account().address, gas=BLOCK_GAS_LIMIT, maxFeePerGas=10**12, maxPriorityFeePerGas=GWEI
    ).raw_transaction
    assert_refused(node, costly, 809, "insufficient funds", sender=sender.address)
    mine_in_its_place(node, sender, [raw, too_much, costly])


def test_gas_above_block_limit(node: Any, sender: Signer) -> None:
    raw = sender.sign(to=fresh_account().address, value=1, gas=BLOCK_GAS_LIMIT + 1).raw_transaction
    assert_refused(node, raw, 803, "block gas limit", sender=sender.address)
    mine_in_its_place(node, sender, [raw])


def test_fee_below_base_fee(node: Any, sender: Signer) -> None:
    base = next_base_fee(sender.w3)
    assert base > 0
    refused = []
    for fields in (
        {"maxFeePerGas": base - 1, "maxPriorityFeePerGas": 0},
        {"gasPrice": base - 1},
        {"type": 1, "gasPrice": 0, "accessList": []},
    ):
        raw = sender.sign(to=fresh_account().address, value=1, gas=21_000, **fields).raw_transaction
        assert_refused(node, raw, 806, "base fee", sender=sender.address)
        refused.append(raw)
    mine_in_its_place(node, sender, refused)


# -- the pool ---------------------------------------------------------------------------


def test_same_transaction_twice_is_already_known(node: Any, sender: Signer) -> None:
    waiting = sender.sign(nonce=1, to=fresh_account().address, value=1, gas=21_000)
    assert send_raw(node, waiting.raw_transaction)["result"] == waiting.hash.to_0x_hex()
    response = send_raw(node, waiting.raw_transaction)
    assert response.get("error", {}).get("code") == 1000, response
    assert "already known" in response["error"]["message"]
    assert node.result("eth_getTransactionByHash", [waiting.hash.to_0x_hex()])["nonce"] == "0x1"
    receipt = mine_in_its_place(node, sender, [])
    later = wait_receipt(sender.w3, waiting.hash)
    assert later["blockNumber"] >= receipt["blockNumber"]
    assert sender.nonce("latest") == 2


def test_replacement_underpriced_then_replaced(node: Any, sender: Signer) -> None:
    w3 = sender.w3
    base = next_base_fee(w3)
    fee_cap, tip = 2 * base + 2 * GWEI, 2 * GWEI
    recipient = fresh_account().address
    original = sender.sign(
        nonce=1, to=recipient, value=1, gas=21_000, maxFeePerGas=fee_cap, maxPriorityFeePerGas=tip
    )
    assert send_raw(node, original.raw_transaction)["result"] == original.hash.to_0x_hex()

    refused = []
    for cap, priority in (
        (fee_cap * 105 // 100, tip * 105 // 100),  # +5% on both
        (fee_cap * 2, tip),  # only the cap raised
        (fee_cap, tip * 2),  # only the tip raised (cap stays)
    ):
        cheap = sender.sign(
            nonce=1,
            to=recipient,
            value=2,
            gas=21_000,
            maxFeePerGas=cap,
            maxPriorityFeePerGas=min(priority, cap),
        )
        error = assert_refused(node, cheap.raw_transaction, TRANSACTION_REJECTED, "underpriced")
        assert "10%" in error["message"]
        refused.append(cheap.raw_transaction)
    # The original is still the one waiting.
    assert node.result("eth_getTransactionByHash", [original.hash.to_0x_hex()]) is not None

    replacement = sender.sign(
        nonce=1,
        to=recipient,
        value=3,
        gas=21_000,
        maxFeePerGas=-(-fee_cap * 11 // 10),  # exactly +10%, rounded up
        maxPriorityFeePerGas=-(-tip * 11 // 10),
    )
    assert send_raw(node, replacement.raw_transaction)["result"] == replacement.hash.to_0x_hex()
    assert node.result("eth_getTransactionByHash", [original.hash.to_0x_hex()]) is None
    assert sender.nonce("pending") == 0

    mine_in_its_place(node, sender, refused + [original.raw_transaction], nonce=0)
    receipt = wait_receipt(w3, replacement.hash)
    assert receipt["status"] == 1
    assert w3.eth.get_balance(recipient) == 3
    assert node.result("eth_getTransactionByHash", [original.hash.to_0x_hex()]) is None


def test_future_nonce_waits_until_the_gap_is_filled(node: Any, funder: Signer, sender: Signer) -> None:
    w3 = sender.w3
    later = sender.sign(nonce=1, to=fresh_account().address, value=1, gas=21_000)
    w3.eth.send_raw_transaction(later.raw_transaction)
    # Another account's transaction is mined meanwhile: the waiting one is not in its block.
    other = funder.transact(to=fresh_account().address, value=1, gas=21_000)
    assert later.hash not in w3.eth.get_block(other["blockNumber"])["transactions"]
    assert node.result("eth_getTransactionReceipt", [later.hash.to_0x_hex()]) is None
    pending = node.result("eth_getTransactionByHash", [later.hash.to_0x_hex()])
    assert (
        pending["blockHash"] is None
        and pending["blockNumber"] is None
        and pending["transactionIndex"] is None
    )
    assert sender.nonce("latest") == sender.nonce("pending") == 0

    first = sender.sign(nonce=0, to=fresh_account().address, value=1, gas=21_000)
    w3.eth.send_raw_transaction(first.raw_transaction)
    receipts = [wait_receipt(w3, first.hash), wait_receipt(w3, later.hash)]
    assert [r["status"] for r in receipts] == [1, 1]
    assert sender.nonce("latest") == sender.nonce("pending") == 2


# -- a pool that fills between timed blocks ---------------------------------------------------


@pytest.fixture(scope="module")
def timed_node() -> Iterator[DevNode]:
    """A node that seals every 3 s, so transactions wait in the pool as ready ones."""
    node = start_dev_node("--ephemeral", "--block-time", "3")
    yield node
    node.stop()


def test_ready_transactions_in_the_pool(timed_node: DevNode) -> None:
    """Pending nonce counts ready transactions; a ready one can be replaced; an overdraft is refused."""
    node = timed_node
    w3 = connect(node)
    sender = funded_signer(Signer(w3, node.accounts[0].key), 10)
    recipient = fresh_account().address
    first = sender.sign(nonce=0, to=recipient, value=6 * ETHER, gas=21_000)
    assert send_raw(node, first.raw_transaction)["result"] == first.hash.to_0x_hex()
    assert sender.nonce("latest") == 0
    assert sender.nonce("pending") == 1, "a ready transaction counts in the pending nonce"

    # Same nonce, fees +10%: replaces the waiting one.
    tx = sender.fill(nonce=0, to=recipient, value=5 * ETHER, gas=21_000)
    replacement = sender.account.sign_transaction(
        {
            **tx,
            "maxFeePerGas": -(-first_fee(w3, first.hash) * 11 // 10),
            "maxPriorityFeePerGas": -(-tip_of(w3, first.hash) * 11 // 10),
        }
    )
    assert send_raw(node, replacement.raw_transaction)["result"] == replacement.hash.to_0x_hex()
    assert node.result("eth_getTransactionByHash", [first.hash.to_0x_hex()]) is None

    # The sender has 10 ETH and 5 ETH + fees waiting: another 6 ETH cannot be paid for.
    # geth's pool refuses it (insufficient funds, counting what the sender's waiting
    # transactions cost); admitting it means it is dropped silently at the next block.
    overdraft = sender.sign(nonce=1, to=recipient, value=6 * ETHER, gas=21_000)
    assert node.result("eth_getTransactionReceipt", [replacement.hash.to_0x_hex()]) is None, "sealed too soon"
    response = send_raw(node, overdraft.raw_transaction)
    mined = wait_receipt(w3, replacement.hash, timeout=10)
    assert mined["status"] == 1 and w3.eth.get_balance(recipient) == 5 * ETHER
    assert "error" in response, (
        "a transaction its sender cannot pay for on top of its waiting ones was admitted "
        f"({response}); after the next block it is "
        f"{node.result('eth_getTransactionByHash', [overdraft.hash.to_0x_hex()])!r:.60}"
    )
    assert response["error"]["code"] == 809, response
    assert "insufficient funds" in response["error"]["message"]


def first_fee(w3: Web3, tx_hash: Any) -> int:
    return w3.eth.get_transaction(tx_hash)["maxFeePerGas"]


def tip_of(w3: Web3, tx_hash: Any) -> int:
    return w3.eth.get_transaction(tx_hash)["maxPriorityFeePerGas"]


# -- JSON-RPC over HTTP -----------------------------------------------------------------


def post(node: Any, content: bytes | str, **kwargs: Any) -> httpx.Response:
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return httpx.post(node.rpc_url, content=content, headers=headers, timeout=30, **kwargs)


def test_invalid_json_is_a_parse_error(node: Any) -> None:
    for body in (b'{"jsonrpc": "2.0", "method": ', b"not json", b"\xff\xfe", b'{"a": 1'):
        response = post(node, body)
        answer = response.json()
        assert answer["jsonrpc"] == "2.0"
        assert answer["id"] is None
        assert answer["error"]["code"] == -32700, answer
        assert "parse" in answer["error"]["message"].lower()


def test_invalid_requests(node: Any) -> None:
    answer = post(node, b"[]").json()
    assert answer["error"]["code"] == -32600 and answer["id"] is None, answer
    assert "empty" in answer["error"]["message"]
    for request in (
        {"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"},
        {"id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": "x"},
        {"jsonrpc": "2.0", "id": {"x": 1}, "method": "eth_chainId"},
    ):
        answer = httpx.post(node.rpc_url, json=request, timeout=30).json()
        assert answer["error"]["code"] == -32600, (request, answer)
    answer = post(node, b"5").json()
    assert answer["error"]["code"] == -32600, answer
    answer = post(node, b"[1, 2]").json()
    assert [a["error"]["code"] for a in answer] == [-32600, -32600], answer


def test_unknown_method_is_answered_promptly(node: Any) -> None:
    for name in ("eth_doesNotExist", "eth_getWork", "trace_transaction", "x" * 10_000):
        started = time.monotonic()
        answer = node.rpc(name, [])
        elapsed = time.monotonic() - started
        assert answer["error"]["code"] == -32601, answer
        assert name[:50] in answer["error"]["message"]
        assert len(answer["error"]["message"]) < 500
        assert elapsed < 1.0, f"{name[:30]} took {elapsed:.2f} s"


@pytest.mark.parametrize(
    ("method", "params", "names"),
    [
        ("eth_getBalance", [123, "latest"], "address"),
        ("eth_getBalance", ["0x1234", "latest"], "address"),
        ("eth_getBalance", ["0x" + "11" * 20, "newest"], "block"),
        ("eth_getBalance", ["0x" + "11" * 20, "0xnothex"], "block"),
        ("eth_getBalance", [], "address"),
        ("eth_getBalance", ["0x" + "11" * 20, "latest", "extra"], "too many"),
        ("eth_getBlockByNumber", ["latest", "yes"], "full"),
        ("eth_getBlockByNumber", [{"blockHash": "0x" + "00" * 32}, False], "block"),
        ("eth_getBlockByHash", ["0x1234", False], "hash"),
        ("eth_getTransactionByHash", [12], "hash"),
        ("eth_getStorageAt", ["0x" + "11" * 20, "0x" + "00" * 33, "latest"], "slot"),
        ("eth_getLogs", [{"topics": ["0x12"]}], "filter"),
        ("eth_getLogs", ["latest"], "filter"),
        ("eth_call", ["0x00"], "transaction"),
        (
            "eth_call",
            [{"to": "0x" + "11" * 20, "value": "0x01", "gasPrice": "0x1", "maxFeePerGas": "0x1"}],
            "gasPrice",
        ),
        ("eth_feeHistory", ["0x0", "latest", []], "blockCount"),
        ("eth_feeHistory", ["0x1", "latest", [90, 10]], "ascending"),
        ("eth_feeHistory", ["0x1", "latest", [101]], "percentile"),
        ("web3_sha3", ["hello"], "data"),
        ("eth_getBalance", ["0x" + "11" * 20, "0x01"], "block"),
    ],
)
def test_wrong_params_are_invalid_params(node: Any, method: str, params: list[Any], names: str) -> None:
    answer = node.rpc(method, params)
    assert "error" in answer, answer
    assert answer["error"]["code"] == -32602, answer
    assert names.lower() in answer["error"]["message"].lower(), answer


HUGE = "0x" + "ff" * 32
HUGE_BLOCK_CASES = [
    ("eth_getBlockByNumber", ["0x8000000000000000", False]),
    ("eth_getBlockByNumber", [HUGE, False]),
    ("eth_getBlockTransactionCountByNumber", [HUGE]),
    ("eth_getTransactionByBlockNumberAndIndex", [HUGE, "0x0"]),
    ("eth_getBlockReceipts", [HUGE]),
    ("eth_getBalance", ["0x" + "11" * 20, HUGE]),
    ("eth_getCode", ["0x" + "11" * 20, HUGE]),
    ("eth_getStorageAt", ["0x" + "11" * 20, "0x0", HUGE]),
    ("eth_getTransactionCount", ["0x" + "11" * 20, HUGE]),
    ("eth_call", [{"to": "0x" + "11" * 20}, HUGE]),
    ("eth_estimateGas", [{"to": "0x" + "11" * 20}, HUGE]),
    ("eth_feeHistory", ["0x1", HUGE, []]),
    ("eth_getLogs", [{"fromBlock": "0x0", "toBlock": HUGE}]),
    ("eth_getLogs", [{"fromBlock": HUGE, "toBlock": HUGE}]),
]


def test_huge_block_numbers_are_not_internal_errors(node: Any) -> None:
    """A block number far beyond the head is unknown (null / -32001) or invalid (-32602), never -32603."""
    wrong = []
    for method, params in HUGE_BLOCK_CASES:
        answer = node.rpc(method, params)
        if "error" in answer:
            if answer["error"]["code"] not in (-32001, -32602):
                wrong.append(f"{method}({params[0]!r:.30}, ...) -> {answer['error']}")
        elif answer["result"] is not None:
            wrong.append(f"{method} -> result {answer['result']!r:.80}")
    assert not wrong, "\n".join(wrong)


def test_oversized_request_body_is_413_with_a_json_rpc_error(node: Any) -> None:
    filler = "0x" + "00" * (MAX_BODY_BYTES // 2 + 10)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "web3_sha3", "params": [filler]}).encode()
    assert len(body) > MAX_BODY_BYTES
    response = post(node, body)
    assert response.status_code == 413
    answer = response.json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] is None
    assert answer["error"]["code"] == -32005, answer
    assert "too large" in answer["error"]["message"]

    # The same without a Content-Length (chunked upload).
    def chunks() -> Any:
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    response = httpx.post(
        node.rpc_url, content=chunks(), headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32005
    # The node still answers afterwards.
    assert node.result("eth_chainId") == hex(node.chain_id)


def test_batch_of_50_mixed_requests(node: Any) -> None:
    account = node.accounts[5].address
    kinds = [
        ({"method": "eth_chainId", "params": []}, "result", hex(node.chain_id)),
        ({"method": "web3_sha3", "params": ["0x"]}, "result", Web3.keccak(b"").to_0x_hex()),
        ({"method": "eth_noSuchMethod", "params": []}, "error", -32601),
        ({"method": "eth_getBalance", "params": ["nope", "latest"]}, "error", -32602),
        ({"method": "eth_getTransactionCount", "params": [account, "earliest"]}, "result", "0x0"),
        ({"method": "eth_getBlockByHash", "params": ["0x" + "00" * 32, False]}, "result", None),
        ({"method": "net_version"}, "result", str(node.chain_id)),
        ({"method": "eth_sendRawTransaction", "params": ["0xc0"]}, "error", INVALID_INPUT),
    ]
    batch, expected = [], []
    for index in range(50):
        request, field, value = kinds[index % len(kinds)]
        request_id: Any = index if index % 3 else f"id-{index}"
        batch.append({"jsonrpc": "2.0", "id": request_id, **request})
        expected.append((request_id, field, value))
    started = time.monotonic()
    response = httpx.post(node.rpc_url, json=batch, timeout=30)
    assert time.monotonic() - started < 10
    answers = response.json()
    assert isinstance(answers, list) and len(answers) == 50
    for answer, (request_id, field, value) in zip(answers, expected, strict=True):
        assert answer["jsonrpc"] == "2.0"
        assert answer["id"] == request_id
        assert field in answer, answer
        if field == "result":
            assert answer["result"] == value, answer
        else:
            assert answer["error"]["code"] == value, answer


def test_notifications_get_no_answer(node: Any) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "method": "eth_noSuchMethod"},
    ]
    answers = httpx.post(node.rpc_url, json=batch, timeout=30).json()
    assert answers == [{"jsonrpc": "2.0", "id": 7, "result": hex(node.chain_id)}]
    response = httpx.post(node.rpc_url, json={"jsonrpc": "2.0", "method": "eth_chainId"}, timeout=30)
    assert response.status_code in (200, 204) and response.content in (b"", b"null")
