"""End-to-end with web3.py: an ERC-20 and the Probe contract on a real `conclave dev` node.

Everything is signed locally with eth_account and sent with eth_sendRawTransaction. The
tests share the session's dev node, so they only use dev accounts 3 and 4 and fresh
random accounts funded from them, and never assume global chain state (block numbers,
other senders' transactions): every expectation is about this module's own contracts,
accounts and blocks.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import rlp
from eth_abi import decode as abi_decode
from eth_bloom import BloomFilter
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TransactionNotFound,
)

from tests.e2e.chain_helpers import (
    ETHER,
    GWEI,
    Signer,
    dev_signer,
    fresh_account,
    funded_signer,
    next_base_fee,
    same_block,
    wait_receipt,
)
from tests.support.artifacts import load_artifact

SUPPLY = 1_000_000 * ETHER
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")
VALUE_SET_TOPIC = Web3.keccak(text="ValueSet(address,uint256,string)")


def create_address(sender: str, nonce: int) -> str:
    return Web3.to_checksum_address(Web3.keccak(rlp.encode([HexBytes(sender), nonce]))[12:])


def topic_of(address: str) -> HexBytes:
    """An address as an indexed event topic (left-padded to 32 bytes)."""
    return HexBytes(b"\x00" * 12 + HexBytes(address))


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alice(w3: Web3, node: Any) -> Signer:
    return dev_signer(w3, node.accounts[3])


@pytest.fixture(scope="module")
def bob(w3: Web3, node: Any) -> Signer:
    return dev_signer(w3, node.accounts[4])


@pytest.fixture(scope="module")
def erc20(alice: Signer, bob: Signer) -> SimpleNamespace:
    """ConclaveToken deployed by alice, then three transfers in three blocks."""
    token, deployed = alice.deploy("ConclaveToken", "Conclave", "CNV", SUPPLY)
    carol, dave = fresh_account().address, fresh_account().address
    to_bob = alice.call_fn(token.functions.transfer(bob.address, 1_000))
    to_carol = alice.call_fn(token.functions.transfer(carol, 200))
    bob_to_dave = bob.call_fn(token.functions.transfer(dave, 300))
    return SimpleNamespace(
        token=token,
        deployed=deployed,
        carol=carol,
        dave=dave,
        to_bob=to_bob,
        to_carol=to_carol,
        bob_to_dave=bob_to_dave,
    )


@pytest.fixture(scope="module")
def probe(alice: Signer) -> Any:
    contract, _ = alice.deploy("Probe")
    return contract


@pytest.fixture(scope="module")
def mixed(alice: Signer, erc20: SimpleNamespace, probe: Any) -> SimpleNamespace:
    """One block holding a legacy, an EIP-2930 and two EIP-1559 transactions, with logs.

    Tips are chosen so fee history rewards are predictable: legacy pays base + 2 gwei,
    the access-list transaction base + 3 gwei, the first EIP-1559 one a 1 gwei tip, and
    the second one is capped by its max fee at base + 0.5 gwei (its tip is as high).
    """
    w3 = alice.w3
    base = next_base_fee(w3)
    token = erc20.token
    slot = Web3.keccak(HexBytes(topic_of(alice.address)) + (0).to_bytes(32, "big"))
    txs = [
        {
            "to": token.address,
            "data": token.functions.transfer(erc20.carol, 1)._encode_transaction_data(),
            "gasPrice": base + 2 * GWEI,
            "gas": 100_000,
        },
        {
            "type": 1,
            "to": token.address,
            "data": token.functions.transfer(erc20.dave, 2)._encode_transaction_data(),
            "gasPrice": base + 3 * GWEI,
            "accessList": [{"address": token.address, "storageKeys": [slot.to_0x_hex()]}],
            "gas": 100_000,
        },
        {
            "type": 2,
            "to": probe.address,
            "data": probe.functions.set(7)._encode_transaction_data(),
            "maxPriorityFeePerGas": GWEI,
            "maxFeePerGas": base + 10 * GWEI,
            "gas": 100_000,
        },
        {
            "type": 2,
            "to": probe.address,
            "data": probe.functions.emitMany(2)._encode_transaction_data(),
            "maxPriorityFeePerGas": base + GWEI // 2,
            "maxFeePerGas": base + GWEI // 2,
            "gas": 200_000,
        },
    ]
    receipts = same_block(alice, txs)
    number = receipts[0]["blockNumber"]
    return SimpleNamespace(
        receipts=receipts,
        number=number,
        hash=receipts[0]["blockHash"],
        base_fee=w3.eth.get_block(number)["baseFeePerGas"],
        hashes=[r["transactionHash"] for r in receipts],
    )


# -- the ERC-20 -----------------------------------------------------------------------


def test_deploy_transfer_and_balances(alice: Signer, bob: Signer, erc20: SimpleNamespace) -> None:
    token = erc20.token
    assert token.functions.name().call() == "Conclave"
    assert token.functions.symbol().call() == "CNV"
    assert token.functions.decimals().call() == 18
    assert token.functions.totalSupply().call() == SUPPLY
    # Balances as of the last transfer (later tests move more tokens).
    at = erc20.bob_to_dave["blockNumber"]
    assert token.functions.balanceOf(alice.address).call(block_identifier=at) == SUPPLY - 1_200
    assert token.functions.balanceOf(bob.address).call(block_identifier=at) == 700
    assert token.functions.balanceOf(erc20.carol).call(block_identifier=at) == 200
    assert token.functions.balanceOf(erc20.dave).call(block_identifier=at) == 300
    before = erc20.to_bob["blockNumber"] - 1
    assert token.functions.balanceOf(bob.address).call(block_identifier=before) == 0
    assert token.functions.balanceOf(bob.address).call() == 700


def test_transfer_events_decoded_from_receipts(alice: Signer, bob: Signer, erc20: SimpleNamespace) -> None:
    token = erc20.token
    (minted,) = token.events.Transfer().process_receipt(erc20.deployed)
    assert minted["args"]["from"] == "0x" + "00" * 20
    assert minted["args"]["to"] == alice.address
    assert minted["args"]["value"] == SUPPLY
    expected = [
        (erc20.to_bob, alice.address, bob.address, 1_000),
        (erc20.to_carol, alice.address, erc20.carol, 200),
        (erc20.bob_to_dave, bob.address, erc20.dave, 300),
    ]
    for receipt, sender, recipient, value in expected:
        assert receipt["status"] == 1
        (event,) = token.events.Transfer().process_receipt(receipt)
        assert (event["args"]["from"], event["args"]["to"], event["args"]["value"]) == (
            sender,
            recipient,
            value,
        )
        assert event["address"] == token.address
        assert event["transactionHash"] == receipt["transactionHash"]
        assert event["blockHash"] == receipt["blockHash"]
        assert event["blockNumber"] == receipt["blockNumber"]
        (raw_log,) = receipt["logs"]
        assert raw_log["topics"] == [TRANSFER_TOPIC, topic_of(sender), topic_of(recipient)]
        assert int.from_bytes(raw_log["data"], "big") == value


def test_get_logs_filters(w3: Web3, alice: Signer, bob: Signer, erc20: SimpleNamespace) -> None:
    token = erc20.token
    first = erc20.deployed["blockNumber"]
    last = erc20.bob_to_dave["blockNumber"]
    mint_log = erc20.deployed["logs"][0]
    to_bob, to_carol, to_dave = (r["logs"][0] for r in (erc20.to_bob, erc20.to_carol, erc20.bob_to_dave))
    span = {"fromBlock": first, "toBlock": last}

    def logs(**criteria: Any) -> list[Any]:
        return w3.eth.get_logs(criteria)

    # Address filter: every Transfer of the token in order, identical to the receipts' logs.
    assert logs(address=token.address, **span) == [mint_log, to_bob, to_carol, to_dave]
    assert logs(address=[token.address, fresh_account().address], **span) == [
        mint_log,
        to_bob,
        to_carol,
        to_dave,
    ]
    assert logs(address=fresh_account().address, **span) == []

    # topic0 = Transfer, topic1 = the padded sender.
    assert logs(address=token.address, topics=[TRANSFER_TOPIC, topic_of(alice.address)], **span) == [
        to_bob,
        to_carol,
    ]
    assert logs(address=token.address, topics=[TRANSFER_TOPIC, topic_of(bob.address)], **span) == [to_dave]
    # OR-alternatives for topic2, null wildcard for topic1.
    assert logs(
        address=token.address,
        topics=[TRANSFER_TOPIC, None, [topic_of(bob.address), topic_of(erc20.dave)]],
        **span,
    ) == [to_bob, to_dave]
    # Null wildcard for topic0.
    assert logs(address=token.address, topics=[None, topic_of("0x" + "00" * 20)], **span) == [mint_log]
    # A topic no log has.
    assert logs(address=token.address, topics=[VALUE_SET_TOPIC], **span) == []
    # More topic positions than the log has: no match.
    assert logs(address=token.address, topics=[None, None, None, TRANSFER_TOPIC], **span) == []

    # Block ranges.
    middle = erc20.to_carol["blockNumber"]
    assert logs(address=token.address, fromBlock=middle, toBlock=last) == [to_carol, to_dave]
    assert logs(address=token.address, fromBlock=middle, toBlock=middle) == [to_carol]
    assert logs(address=token.address, fromBlock=0, toBlock=first - 1) == []
    assert logs(address=token.address, fromBlock=first) == logs(
        address=token.address, fromBlock=first, toBlock="latest"
    )
    # Without an address the range holds exactly that block's logs (this module's blocks hold only its txs).
    assert logs(fromBlock=middle, toBlock=middle) == [to_carol]

    # blockHash filter.
    assert logs(blockHash=erc20.bob_to_dave["blockHash"]) == [to_dave]
    assert logs(blockHash=erc20.bob_to_dave["blockHash"], address=fresh_account().address) == []


def test_get_logs_bad_filters_are_errors(node: Any, erc20: SimpleNamespace) -> None:
    token = erc20.token.address
    late = erc20.bob_to_dave["blockNumber"]
    response = node.rpc("eth_getLogs", [{"address": token, "fromBlock": hex(late), "toBlock": hex(late - 1)}])
    assert "error" in response and "range" in response["error"]["message"], response
    unknown = "0x" + "ab" * 32
    response = node.rpc("eth_getLogs", [{"blockHash": unknown}])
    assert response.get("error", {}).get("code") == -32001, response
    response = node.rpc(
        "eth_getLogs", [{"blockHash": erc20.bob_to_dave["blockHash"].to_0x_hex(), "fromBlock": "0x1"}]
    )
    assert response.get("error", {}).get("code") == -32602, response


# -- transaction types ----------------------------------------------------------------


def test_legacy_2930_and_1559_transactions(
    w3: Web3, node: Any, alice: Signer, mixed: SimpleNamespace
) -> None:
    legacy, access_list, dynamic, capped = mixed.receipts
    base = mixed.base_fee
    assert [r["status"] for r in mixed.receipts] == [1, 1, 1, 1]
    assert [r["type"] for r in mixed.receipts] == [0, 1, 2, 2]
    assert legacy["effectiveGasPrice"] == base + 2 * GWEI
    assert access_list["effectiveGasPrice"] == base + 3 * GWEI
    assert dynamic["effectiveGasPrice"] == base + GWEI
    assert capped["effectiveGasPrice"] == base + GWEI // 2

    tx = w3.eth.get_transaction(legacy["transactionHash"])
    assert tx["type"] == 0
    assert tx["gasPrice"] == base + 2 * GWEI
    assert tx["v"] in (2 * node.chain_id + 35, 2 * node.chain_id + 36), "EIP-155 v"
    assert "maxFeePerGas" not in tx

    tx = w3.eth.get_transaction(access_list["transactionHash"])
    assert tx["type"] == 1
    assert tx["chainId"] == node.chain_id
    assert tx["gasPrice"] == base + 3 * GWEI
    assert len(tx["accessList"]) == 1
    assert tx["accessList"][0]["address"] == access_list["to"]
    assert len(tx["accessList"][0]["storageKeys"]) == 1
    assert tx["yParity"] in (0, 1)

    for receipt, tip, fee_cap in (
        (dynamic, GWEI, base + 10 * GWEI),
        (capped, base + GWEI // 2, base + GWEI // 2),
    ):
        tx = w3.eth.get_transaction(receipt["transactionHash"])
        assert tx["type"] == 2
        assert tx["maxPriorityFeePerGas"] == tip
        assert tx["maxFeePerGas"] == fee_cap
        assert tx["gasPrice"] == receipt["effectiveGasPrice"], "a mined 1559 tx reports what it paid"
        assert tx["accessList"] == []

    # The sender paid exactly sum(gasUsed * effectiveGasPrice) in that block.
    paid = sum(r["gasUsed"] * r["effectiveGasPrice"] for r in mixed.receipts)
    before = w3.eth.get_balance(alice.address, mixed.number - 1)
    after = w3.eth.get_balance(alice.address, mixed.number)
    assert before - after == paid


def test_plain_ether_transfers_of_each_type(w3: Web3, alice: Signer) -> None:
    for fields in ({"type": 0}, {"type": 1, "accessList": []}, {"type": 2}):
        recipient = fresh_account().address
        receipt = alice.transact(to=recipient, value=12_345, gas=21_000, **fields)
        assert receipt["status"] == 1
        assert receipt["type"] == fields["type"]
        assert receipt["gasUsed"] == 21_000
        assert receipt["to"] == recipient
        assert receipt["contractAddress"] is None
        assert w3.eth.get_balance(recipient) == 12_345


# -- reverts --------------------------------------------------------------------------


def test_revert_reasons_from_call_and_estimate(alice: Signer, probe: Any) -> None:
    cases = [
        (probe.functions.revertWithReason(), "probe: told to revert"),
        (probe.functions.requireFalse(), "probe: requirement failed"),
        (probe.functions.revertingView(), "probe: view reverted"),
    ]
    for fn, reason in cases:
        with pytest.raises(ContractLogicError) as call_error:
            fn.call({"from": alice.address})
        assert reason in str(call_error.value.message)
        assert not isinstance(call_error.value, (ContractCustomError, ContractPanicError))
        with pytest.raises(ContractLogicError) as estimate_error:
            fn.estimate_gas({"from": alice.address})
        assert reason in str(estimate_error.value.message)


def test_revert_error_shape_over_json_rpc(node: Any, alice: Signer, probe: Any) -> None:
    data = probe.functions.revertWithReason()._encode_transaction_data()
    for method in ("eth_call", "eth_estimateGas"):
        response = node.rpc(method, [{"from": alice.address, "to": probe.address, "input": data}, "latest"])
        error = response["error"]
        assert error["code"] == 3
        assert error["message"] == "execution reverted: probe: told to revert"
        selector = Web3.keccak(text="Error(string)")[:4]
        payload = HexBytes(error["data"])
        assert payload[:4] == selector
        assert abi_decode(["string"], payload[4:]) == ("probe: told to revert",)


def test_custom_error_decodes_to_unauthorized(alice: Signer, probe: Any) -> None:
    selector = Web3.keccak(text="Unauthorized(address,uint256)")[:4]
    for action in ("call", "estimate_gas"):
        with pytest.raises(ContractCustomError) as error:
            getattr(probe.functions.failCustom(), action)({"from": alice.address})
        payload = HexBytes(error.value.data)
        assert payload[:4] == selector
        caller, code = abi_decode(["address", "uint256"], payload[4:])
        assert Web3.to_checksum_address(caller) == alice.address
        assert code == 42
    # The selector is the one the contract's ABI declares.
    (abi,) = [
        e for e in load_artifact("Probe")["abi"] if e["type"] == "error" and e["name"] == "Unauthorized"
    ]
    signature = "Unauthorized(" + ",".join(i["type"] for i in abi["inputs"]) + ")"
    assert Web3.keccak(text=signature)[:4] == selector


def test_panics(alice: Signer, probe: Any) -> None:
    with pytest.raises(ContractPanicError) as error:
        probe.functions.panicAssert().call({"from": alice.address})
    assert HexBytes(error.value.data) == Web3.keccak(text="Panic(uint256)")[:4] + (1).to_bytes(32, "big")
    with pytest.raises(ContractPanicError) as error:
        probe.functions.divide(1, 0).call({"from": alice.address})
    assert HexBytes(error.value.data)[-1] == 0x12
    with pytest.raises(ContractPanicError):
        probe.functions.divide(1, 0).estimate_gas({"from": alice.address})
    assert probe.functions.divide(10, 3).call() == 3


def test_reverted_transaction_is_mined_with_status_0_and_charged(w3: Web3, alice: Signer, probe: Any) -> None:
    nonce = alice.nonce()
    receipt = alice.call_fn(probe.functions.revertWithReason(), gas=100_000)
    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert 21_000 < receipt["gasUsed"] < 100_000
    number = receipt["blockNumber"]
    charged = w3.eth.get_balance(alice.address, number - 1) - w3.eth.get_balance(alice.address, number)
    assert charged == receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert alice.nonce("latest") == nonce + 1
    # The custom error path and a panic are mined the same way.
    for fn in (probe.functions.failCustom(), probe.functions.panicAssert()):
        assert alice.call_fn(fn, gas=100_000)["status"] == 0
    # A transaction that runs out of gas too: all of its gas is used.
    burn = alice.call_fn(probe.functions.burnGas(10_000), gas=60_000)
    assert burn["status"] == 0
    assert burn["gasUsed"] == 60_000


def test_gas_estimates_are_exact_enough(w3: Web3, alice: Signer, erc20: SimpleNamespace, probe: Any) -> None:
    """A transaction sent with exactly the estimated gas succeeds (nested calls, CREATE, refunds)."""
    assert w3.eth.estimate_gas({"from": alice.address, "to": fresh_account().address, "value": 1}) == 21_000
    calls = [
        erc20.token.functions.transfer(fresh_account().address, 1),
        probe.functions.burnGas(300),
        probe.functions.spawnChild(2),
        probe.functions.pingChild(1),
        probe.functions.tryChildFail(),
        probe.functions.set(0),  # clearing a slot: a refund
    ]
    for fn in calls:
        estimate = fn.estimate_gas({"from": alice.address})
        receipt = alice.call_fn(fn, gas=estimate)
        assert receipt["status"] == 1, f"{fn.fn_name} failed with its own estimate {estimate}"
        assert receipt["gasUsed"] <= estimate


# -- code and storage -----------------------------------------------------------------


def test_contract_creation_receipt_and_code(w3: Web3, alice: Signer) -> None:
    nonce = alice.nonce()
    artifact = load_artifact("ConclaveToken")
    token, receipt = alice.deploy("ConclaveToken", "Second", "SEC", 5)
    assert receipt["contractAddress"] == create_address(alice.address, nonce)
    assert receipt["to"] is None
    assert w3.eth.get_transaction(receipt["transactionHash"])["to"] is None
    assert "0x" + bytes(w3.eth.get_code(token.address)).hex() == artifact["deployedBytecode"]
    assert w3.eth.get_code(token.address, receipt["blockNumber"] - 1) == b""
    assert w3.eth.get_code(alice.address) == b""


def test_storage_at_reads_the_probe_value(w3: Web3, alice: Signer, probe: Any) -> None:
    first = alice.call_fn(probe.functions.set(0xC0FFEE))
    second = alice.call_fn(probe.functions.set(2**255 + 1))
    assert w3.eth.get_storage_at(probe.address, 0, first["blockNumber"]) == (0xC0FFEE).to_bytes(32, "big")
    assert w3.eth.get_storage_at(probe.address, 0) == (2**255 + 1).to_bytes(32, "big")
    assert w3.eth.get_storage_at(probe.address, 0, second["blockNumber"]) == (2**255 + 1).to_bytes(32, "big")
    assert probe.functions.get().call(block_identifier=first["blockNumber"]) == 0xC0FFEE
    assert probe.functions.get().call() == 2**255 + 1
    assert w3.eth.get_storage_at(probe.address, 12345) == b"\x00" * 32
    (event,) = probe.events.ValueSet().process_receipt(second)
    assert event["args"]["value"] == 2**255 + 1 and event["args"]["note"] == "set"


# -- nonces and the pool --------------------------------------------------------------


def test_nonce_latest_vs_pending_with_a_gap(w3: Web3, alice: Signer) -> None:
    carl = funded_signer(alice, 1)
    assert carl.nonce("latest") == carl.nonce("pending") == 0
    later = carl.sign(nonce=1, to=alice.address, value=1, gas=21_000)
    assert w3.eth.send_raw_transaction(later.raw_transaction) == later.hash
    pending = w3.eth.get_transaction(later.hash)
    assert pending["blockNumber"] is None and pending["blockHash"] is None
    assert pending["nonce"] == 1 and pending["from"] == carl.address
    # The gap at nonce 0 keeps it waiting: nothing is mined, and pending does not jump.
    for _ in range(5):
        with pytest.raises(TransactionNotFound):
            w3.eth.get_transaction_receipt(later.hash)
        assert carl.nonce("latest") == 0
        assert carl.nonce("pending") == 0
    first = carl.sign(nonce=0, to=alice.address, value=1, gas=21_000)
    w3.eth.send_raw_transaction(first.raw_transaction)
    receipts = [wait_receipt(w3, first.hash), wait_receipt(w3, later.hash)]
    assert all(r["status"] == 1 for r in receipts)
    assert receipts[0]["blockNumber"] <= receipts[1]["blockNumber"]
    assert carl.nonce("latest") == carl.nonce("pending") == 2


# -- blocks ---------------------------------------------------------------------------


def test_blocks_by_number_and_hash_agree(w3: Web3, mixed: SimpleNamespace) -> None:
    by_number = w3.eth.get_block(mixed.number)
    by_hash = w3.eth.get_block(mixed.hash)
    assert by_number == by_hash
    assert by_number["hash"] == mixed.hash
    assert by_number["number"] == mixed.number
    assert list(by_number["transactions"]) == mixed.hashes
    assert by_number["gasUsed"] == sum(r["gasUsed"] for r in mixed.receipts)
    assert by_number["baseFeePerGas"] == mixed.base_fee
    assert w3.eth.get_block(mixed.number - 1)["hash"] == by_number["parentHash"]

    full_by_number = w3.eth.get_block(mixed.number, full_transactions=True)
    full_by_hash = w3.eth.get_block(mixed.hash, full_transactions=True)
    assert full_by_number == full_by_hash
    assert {k: v for k, v in full_by_number.items() if k != "transactions"} == {
        k: v for k, v in by_number.items() if k != "transactions"
    }
    assert [tx["hash"] for tx in full_by_number["transactions"]] == mixed.hashes
    for index, tx in enumerate(full_by_number["transactions"]):
        assert tx == w3.eth.get_transaction(mixed.hashes[index])
        assert tx["blockHash"] == mixed.hash
        assert tx["blockNumber"] == mixed.number
        assert tx["transactionIndex"] == index


def test_block_tags(w3: Web3) -> None:
    latest = w3.eth.get_block("latest")
    assert latest["number"] <= w3.eth.block_number
    for tag in ("safe", "finalized"):
        block = w3.eth.get_block(tag)
        assert block["number"] >= latest["number"]
    assert w3.eth.get_block("earliest")["number"] == 0
    assert w3.eth.get_block(0)["parentHash"] == b"\x00" * 32


def test_block_receipts_match_individual_receipts(w3: Web3, mixed: SimpleNamespace) -> None:
    individual = [w3.eth.get_transaction_receipt(h) for h in mixed.hashes]
    assert individual == mixed.receipts
    assert w3.eth.get_block_receipts(mixed.number) == individual
    assert w3.eth.get_block_receipts(hex(mixed.number)) == individual
    cumulative = 0
    log_indexes = []
    for index, receipt in enumerate(individual):
        cumulative += receipt["gasUsed"]
        assert receipt["cumulativeGasUsed"] == cumulative
        assert receipt["transactionIndex"] == index
        log_indexes += [log["logIndex"] for log in receipt["logs"]]
        for log in receipt["logs"]:
            assert log["transactionIndex"] == index
            assert log["blockHash"] == mixed.hash
    assert log_indexes == list(range(len(log_indexes)))
    # set(7): 1 log; emitMany(2): ValueSet, Tagged, 2 x Counted, Marker.
    assert [len(r["logs"]) for r in individual] == [1, 1, 1, 5]
    # Each receipt's bloom is the bloom of its logs; the block's is their union.
    union = 0
    for receipt in individual:
        bloom = BloomFilter()
        for log in receipt["logs"]:
            bloom.add(
                bytes(log["address"]) if isinstance(log["address"], bytes) else HexBytes(log["address"])
            )
            for topic in log["topics"]:
                bloom.add(bytes(topic))
        assert int.from_bytes(receipt["logsBloom"], "big") == int(bloom)
        union |= int(bloom)
    assert int.from_bytes(w3.eth.get_block(mixed.number)["logsBloom"], "big") == union


def test_block_receipts_by_block_hash(w3: Web3, node: Any, mixed: SimpleNamespace) -> None:
    """eth_getBlockReceipts takes BlockNumberOrTagOrHash: a bare 32-byte hash string names a block.

    web3.py's get_block_receipts(block_hash) sends exactly that.
    """
    response = node.rpc("eth_getBlockReceipts", [{"blockHash": mixed.hash.to_0x_hex()}])
    assert [r["transactionHash"] for r in response["result"]] == [h.to_0x_hex() for h in mixed.hashes]
    assert w3.eth.get_block_receipts(mixed.hash) == mixed.receipts
    response = node.rpc("eth_getBlockReceipts", [mixed.hash.to_0x_hex()])
    assert "error" not in response, response
    assert response["result"] is not None, "a bare block hash must find the block"
    assert [r["transactionHash"] for r in response["result"]] == [h.to_0x_hex() for h in mixed.hashes]


def test_transaction_counts_and_by_index(w3: Web3, node: Any, mixed: SimpleNamespace) -> None:
    assert w3.eth.get_block_transaction_count(mixed.number) == 4
    assert w3.eth.get_block_transaction_count(mixed.hash) == 4
    for index, tx_hash in enumerate(mixed.hashes):
        by_number = w3.eth.get_transaction_by_block(mixed.number, index)
        by_hash = w3.eth.get_transaction_by_block(mixed.hash, index)
        assert by_number == by_hash == w3.eth.get_transaction(tx_hash)
    assert node.result("eth_getTransactionByBlockNumberAndIndex", [hex(mixed.number), "0x4"]) is None
    assert node.result("eth_getTransactionByBlockHashAndIndex", [mixed.hash.to_0x_hex(), "0x4"]) is None
    unknown = "0x" + "cd" * 32
    assert node.result("eth_getBlockTransactionCountByHash", [unknown]) is None
    assert node.result("eth_getTransactionByBlockHashAndIndex", [unknown, "0x0"]) is None
    assert node.result("eth_getBlockTransactionCountByNumber", ["0xffffffff"]) is None
    assert node.result("eth_getBlockByNumber", ["0xffffffff", False]) is None
    assert node.result("eth_getBlockByHash", [unknown, True]) is None
    assert node.result("eth_getTransactionByHash", [unknown]) is None
    assert node.result("eth_getTransactionReceipt", [unknown]) is None


# -- fees -----------------------------------------------------------------------------


def gas_weighted_percentile(tips: list[tuple[int, int]], percentile: float) -> int:
    """geth's reward percentile: the tip at which the cumulative gas reaches the percentile."""
    ordered = sorted(tips)
    total = sum(gas for _, gas in ordered)
    accumulated = 0
    for tip, gas in ordered:
        accumulated += gas
        if accumulated >= total * percentile / 100:
            return tip
    return ordered[-1][0]


def test_fee_history(w3: Web3, alice: Signer, mixed: SimpleNamespace) -> None:
    if w3.eth.block_number == mixed.number:
        alice.transact(to=fresh_account().address, value=1, gas=21_000)  # a block after `mixed`
    percentiles = [0, 25, 50, 75, 100]
    history = w3.eth.fee_history(3, mixed.number, percentiles)
    assert history["oldestBlock"] == mixed.number - 2
    assert len(history["baseFeePerGas"]) == 4
    assert len(history["gasUsedRatio"]) == 3
    assert len(history["reward"]) == 3
    for offset in range(3):
        block = w3.eth.get_block(mixed.number - 2 + offset)
        assert history["baseFeePerGas"][offset] == block["baseFeePerGas"]
        assert history["gasUsedRatio"][offset] == pytest.approx(block["gasUsed"] / block["gasLimit"])
        assert len(history["reward"][offset]) == len(percentiles)
    # The block after `mixed` has the base fee fee history predicts.
    assert history["baseFeePerGas"][3] == w3.eth.get_block(mixed.number + 1)["baseFeePerGas"]

    tips = [(r["effectiveGasPrice"] - mixed.base_fee, r["gasUsed"]) for r in mixed.receipts]
    assert history["reward"][2] == [gas_weighted_percentile(tips, p) for p in percentiles]
    assert history["reward"][2][0] == GWEI // 2
    assert history["reward"][2][-1] == 3 * GWEI

    # Without percentiles there is no reward field.
    plain = w3.eth.fee_history(1, mixed.number)
    assert "reward" not in plain or plain["reward"] in (None, [])
    assert plain["baseFeePerGas"] == history["baseFeePerGas"][2:]


def test_fee_history_pending_and_latest(w3: Web3) -> None:
    head = w3.eth.block_number
    latest = w3.eth.fee_history(2, "latest", [50])
    assert latest["oldestBlock"] in (head - 1, head)
    pending = w3.eth.fee_history(2, "pending", [10, 90])
    newest = pending["oldestBlock"] + len(pending["gasUsedRatio"]) - 1
    assert newest in (head, head + 1)
    assert len(pending["baseFeePerGas"]) == len(pending["gasUsedRatio"]) + 1
    assert len(pending["reward"]) == len(pending["gasUsedRatio"])
    assert all(len(r) == 2 for r in pending["reward"])
    # More blocks than the chain has: starts at genesis.
    everything = w3.eth.fee_history(1024, "latest")
    assert everything["oldestBlock"] == max(0, w3.eth.block_number - 1023)


def test_gas_price_and_priority_fee(w3: Web3) -> None:
    tip = w3.eth.max_priority_fee
    assert tip > 0
    base = next_base_fee(w3)
    assert w3.eth.gas_price == base + tip
    assert w3.eth.gas_price >= w3.eth.get_block("latest")["baseFeePerGas"] * 7 // 8


# -- block parameters and history ------------------------------------------------------


def test_eip1898_block_parameters(node: Any, w3: Web3, alice: Signer, probe: Any) -> None:
    before = alice.call_fn(probe.functions.set(111))
    after = alice.call_fn(probe.functions.set(222))
    data = probe.functions.get()._encode_transaction_data()
    call = {"to": probe.address, "input": data}
    for receipt, value in ((before, 111), (after, 222)):
        block_hash = receipt["blockHash"].to_0x_hex()
        number = hex(receipt["blockNumber"])
        balance = w3.eth.get_balance(alice.address, receipt["blockNumber"])
        for ref in (
            {"blockHash": block_hash},
            {"blockHash": block_hash, "requireCanonical": True},
            {"blockNumber": number},
        ):
            assert int(node.result("eth_getBalance", [alice.address, ref]), 16) == balance
            assert int(node.result("eth_call", [call, ref]), 16) == value
    unknown = {"blockHash": "0x" + "ee" * 32}
    for method, params in (("eth_getBalance", [alice.address, unknown]), ("eth_call", [call, unknown])):
        response = node.rpc(method, params)
        assert response.get("error", {}).get("code") == -32001, response
        assert "not found" in response["error"]["message"]


def test_historical_state(w3: Web3, alice: Signer) -> None:
    recipient = fresh_account().address
    receipt = alice.transact(to=recipient, value=3 * ETHER, gas=21_000)
    number = receipt["blockNumber"]
    assert w3.eth.get_balance(recipient, number - 1) == 0
    assert w3.eth.get_balance(recipient, number) == 3 * ETHER
    assert w3.eth.get_balance(recipient) == 3 * ETHER
    spent = w3.eth.get_balance(alice.address, number - 1) - w3.eth.get_balance(alice.address, number)
    assert spent == 3 * ETHER + 21_000 * receipt["effectiveGasPrice"]
    assert (
        w3.eth.get_transaction_count(alice.address, number)
        == w3.eth.get_transaction_count(alice.address, number - 1) + 1
    )
    assert w3.eth.get_balance(alice.address, "earliest") == 10_000 * ETHER
    assert w3.eth.get_balance(alice.address, 0) == 10_000 * ETHER
    assert w3.eth.get_transaction_count(alice.address, 0) == 0


def test_future_block_is_an_error(node: Any, alice: Signer) -> None:
    response = node.rpc("eth_getBalance", [alice.address, "0xffffff"])
    assert response.get("error", {}).get("code") == -32001, response


# -- client and network ---------------------------------------------------------------


def test_client_and_network_methods(w3: Web3, node: Any) -> None:
    assert node.result("web3_sha3", ["0x68656c6c6f20776f726c64"]) == (
        "0x47173285a8d7341e5e972fc677286384f802f8ef42a5ec5f03bbfa254cb01fad"
    )
    assert node.result("web3_sha3", ["0x"]) == Web3.keccak(b"").to_0x_hex()
    assert w3.net.version == str(node.chain_id)
    assert w3.eth.chain_id == node.chain_id
    assert w3.eth.syncing is False
    accounts = w3.eth.accounts
    assert len(accounts) == 10
    assert accounts == [a.address for a in node.accounts]
    version = w3.client_version
    assert version.startswith("anvil-compatible Conclave/")
    assert w3.is_connected()
