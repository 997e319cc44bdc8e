"""End-to-end: every JSON-RPC method the node serves answers what the execution-apis spec says.

A node of this module's own gets real data first: contracts, a block holding legacy,
EIP-2930 and EIP-1559 transactions with logs, a reverted transaction and a contract
creation, an EIP-7702 transaction, and a transaction waiting in the pool. Then each
method of the node's method table (`gateway.methods.METHODS`) is called with several
real parameter sets and every result is validated against the spec's result schema
(`tests.support.spec`). The parameters sent are validated against the spec too, so the
calls are ones any spec-following client could make.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

from gateway.rpc import METHODS
from tests.e2e.chain_helpers import (
    GWEI,
    Signer,
    connect,
    fresh_account,
    next_base_fee,
    same_block,
    wait_receipt,
)
from tests.support.artifacts import load_artifact
from tests.support.devnode import DevNode, start_dev_node
from tests.support.sign_in import sign_in
from tests.support.spec import load_spec, validate_params, validate_result

# Methods the node serves that the execution-apis spec does not define: the long-standing
# web3_* / net_* methods every Ethereum client answers. Their results are checked against
# the schemas below instead.
ADDRESS = {"$ref": "urn:execution-apis:components#/components/schemas/address"}
UINT = {"$ref": "urn:execution-apis:components#/components/schemas/uint"}
EXTENSIONS: dict[str, dict[str, Any]] = {
    "web3_clientVersion": {"type": "string", "minLength": 1},
    "web3_sha3": {"$ref": "urn:execution-apis:components#/components/schemas/hash32"},
    "net_listening": {"type": "boolean"},
    "net_peerCount": {"$ref": "urn:execution-apis:components#/components/schemas/uint"},
    "rpc.discover": {
        "type": "object",
        "required": ["openrpc", "info", "methods", "components"],
        "properties": {
            "methods": {"type": "array", "items": {"type": "object", "required": ["name", "params"]}}
        },
    },
    # geth's debug_traceCall: a transaction trace of the struct logger or the callTracer.
    "debug_traceCall": {
        "anyOf": [
            {"$ref": "urn:execution-apis:components#/components/schemas/OpcodeTransactionTrace"},
            {"type": "object", "required": ["type", "from", "to", "gas", "gasUsed", "input"]},
        ]
    },
    # Proof-of-work methods the spec dropped, answered as a post-merge node does.
    "eth_mining": {"type": "boolean"},
    "eth_hashrate": {"$ref": "urn:execution-apis:components#/components/schemas/uint"},
    "eth_getUncleCountByBlockHash": {
        "oneOf": [{"$ref": "urn:execution-apis:components#/components/schemas/uint"}, {"type": "null"}]
    },
    "eth_getUncleCountByBlockNumber": {
        "oneOf": [{"$ref": "urn:execution-apis:components#/components/schemas/uint"}, {"type": "null"}]
    },
    # Dev-chain methods (`conclave dev` only), answered as Hardhat and Anvil answer them.
    "personal_sign": {"$ref": "urn:execution-apis:components#/components/schemas/bytes65"},
    "eth_signTypedData_v4": {"$ref": "urn:execution-apis:components#/components/schemas/bytes65"},
    "evm_mine": {"$ref": "urn:execution-apis:components#/components/schemas/uint"},
    "evm_snapshot": {"$ref": "urn:execution-apis:components#/components/schemas/uint"},
    "evm_revert": {"type": "boolean"},
    "evm_increaseTime": {"$ref": "urn:execution-apis:components#/components/schemas/uint"},
    "evm_setNextBlockTimestamp": {"type": "null"},
    "hardhat_mine": {"type": "boolean"},
    "anvil_mine": {"type": "null"},
    **{
        f"hardhat_{name}": {"type": "boolean"}
        for name in ("setBalance", "setNonce", "setCode", "setStorageAt")
    },
    **{f"anvil_{name}": {"type": "null"} for name in ("setBalance", "setNonce", "setCode", "setStorageAt")},
    # Conclave's own: a confidential transaction's hash, as eth_sendRawTransaction answers.
    "conclave_sendRawPrivateTransaction": {
        "$ref": "urn:execution-apis:components#/components/schemas/hash32"
    },
    # Besu's QBFT methods, and Conclave's view of consensus.
    "qbft_getValidatorsByBlockNumber": {"type": "array", "minItems": 1, "items": ADDRESS},
    "qbft_getValidatorsByBlockHash": {"type": "array", "minItems": 1, "items": ADDRESS},
    "qbft_getRequestTimeoutSeconds": {"type": "integer", "minimum": 1},
    "qbft_getSignerMetrics": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["address", "proposedBlockCount", "lastProposedBlockNumber"],
            "properties": {"address": ADDRESS, "proposedBlockCount": UINT},
        },
    },
    "conclave_getBlockCertificate": {
        "oneOf": [
            {"type": "null"},
            {
                "type": "object",
                "required": ["blockHash", "round", "seals", "signers", "validators", "proposer"],
                "properties": {
                    "blockHash": {"$ref": "urn:execution-apis:components#/components/schemas/hash32"},
                    "round": UINT,
                    "seals": {"type": "array", "minItems": 1},
                    "signers": {"type": "array", "minItems": 1, "items": ADDRESS},
                    "proposer": ADDRESS,
                },
            },
        ]
    },
    # A receipt anyone can verify (docs/receipts.md).
    "conclave_getTransactionProof": {
        "oneOf": [
            {"type": "null"},
            {
                "type": "object",
                "required": [
                    "format",
                    "transactionHash",
                    "transaction",
                    "receipt",
                    "transactionIndex",
                    "transactionProof",
                    "receiptProof",
                    "blockNumber",
                    "blockHash",
                    "header",
                    "certificate",
                    "validators",
                    "validatorChanges",
                ],
                "properties": {
                    "format": {"const": "conclave-receipt/1"},
                    "transactionHash": {"$ref": "urn:execution-apis:components#/components/schemas/hash32"},
                    "transaction": {"$ref": "urn:execution-apis:components#/components/schemas/bytes"},
                    "receipt": {"$ref": "urn:execution-apis:components#/components/schemas/bytes"},
                    "transactionIndex": UINT,
                    "transactionProof": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"$ref": "urn:execution-apis:components#/components/schemas/bytes"},
                    },
                    "receiptProof": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"$ref": "urn:execution-apis:components#/components/schemas/bytes"},
                    },
                    "blockNumber": UINT,
                    "blockHash": {"$ref": "urn:execution-apis:components#/components/schemas/hash32"},
                    "header": {"$ref": "urn:execution-apis:components#/components/schemas/bytes"},
                    "certificate": {
                        "oneOf": [
                            {"type": "null"},  # a block stored before certificates were kept
                            {
                                "type": "object",
                                "required": ["round", "seals"],
                                "properties": {"round": UINT, "seals": {"type": "array", "minItems": 1}},
                            },
                        ]
                    },
                    "validators": {"type": "array", "minItems": 1, "items": ADDRESS},
                    "validatorChanges": {"type": "array"},
                },
            },
        ]
    },
    "conclave_consensusStatus": {
        "type": "object",
        "required": ["height", "round", "proposer", "validators", "quorum", "isValidator"],
    },
    "eth_getUncleByBlockHashAndIndex": {"type": "null"},
    "eth_getUncleByBlockNumberAndIndex": {"type": "null"},
    # geth's one-line summaries, keyed like txpool_content: sender, then decimal nonce.
    "txpool_inspect": {
        "type": "object",
        "required": ["pending", "queued"],
        "additionalProperties": False,
        "properties": {
            group: {
                "type": "object",
                "propertyNames": {"pattern": "^0x[0-9a-fA-F]{40}$"},
                "additionalProperties": {
                    "type": "object",
                    "propertyNames": {"pattern": "^(0|[1-9][0-9]*)$"},
                    "additionalProperties": {"type": "string", "pattern": " wei \\+ [0-9]+ gas × "},
                },
            }
            for group in ("pending", "queued")
        },
    },
}

UNKNOWN_HASH = "0x" + "5a" * 32
TYPED_DATA = {
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}],
        "Mail": [{"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Conclave"},
    "message": {"contents": "hello"},
}


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


@pytest.fixture(scope="module")
def world(node: DevNode) -> SimpleNamespace:
    """Real chain data to call every method with."""
    w3 = connect(node)
    alice = Signer(w3, node.accounts[0].key)
    bob = Signer(w3, node.accounts[1].key)
    token, token_receipt = alice.deploy("ConclaveToken", "Conclave", "CNV", 10**24)
    probe, _ = alice.deploy("Probe")
    # Filters installed before the data below, so that polling them finds changes.
    filters = {
        "logs": node.result("eth_newFilter", [{"address": probe.address}]),
        "blocks": node.result("eth_newBlockFilter"),
        "pending": node.result("eth_newPendingTransactionFilter"),
    }
    alice.call_fn(probe.functions.set(99))
    base = next_base_fee(w3)
    artifact = load_artifact("Probe")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipts = same_block(
        alice,
        [
            {
                "to": token.address,
                "data": token.functions.transfer(bob.address, 5)._encode_transaction_data(),
                "gasPrice": base + GWEI,
                "gas": 100_000,
            },
            {
                "type": 1,
                "to": token.address,
                "data": token.functions.transfer(bob.address, 6)._encode_transaction_data(),
                "gasPrice": base + 2 * GWEI,
                "accessList": [{"address": token.address, "storageKeys": ["0x" + "00" * 32]}],
                "gas": 100_000,
            },
            {
                "type": 2,
                "to": probe.address,
                "data": probe.functions.emitMany(3)._encode_transaction_data(),
                "gas": 300_000,
            },
            {
                "type": 2,
                "to": probe.address,
                "data": probe.functions.revertWithReason()._encode_transaction_data(),
                "gas": 100_000,
            },
            {"type": 2, "data": factory.constructor().data_in_transaction, "gas": 2_000_000},
            {"type": 2, "to": bob.address, "value": 10**18, "gas": 21_000},
        ],
    )
    assert [r["status"] for r in receipts] == [1, 1, 1, 0, 1, 1]
    assert receipts[4]["contractAddress"] is not None
    block = w3.eth.get_block(receipts[0]["blockNumber"])
    # A transaction waiting in the pool for a nonce gap.
    waiting = bob.sign(nonce=bob.nonce() + 1, to=alice.address, value=1, gas=21_000)
    w3.eth.send_raw_transaction(waiting.raw_transaction)
    return SimpleNamespace(
        w3=w3,
        alice=alice,
        bob=bob,
        token=token,
        token_receipt=token_receipt,
        probe=probe,
        receipts=receipts,
        block_number=hex(block["number"]),
        block_hash=block["hash"].to_0x_hex(),
        tx_hashes=[r["transactionHash"].to_0x_hex() for r in receipts],
        pending_hash=waiting.hash.to_0x_hex(),
        filters=filters,
        new_filter=lambda: node.result("eth_newBlockFilter"),
        probe_set_data=probe.functions.set(1)._encode_transaction_data(),
        probe_get_data=probe.functions.get()._encode_transaction_data(),
        probe_revert_data=probe.functions.revertWithReason()._encode_transaction_data(),
    )


@pytest.fixture(scope="module")
def set_code_tx(node: DevNode, world: SimpleNamespace) -> str:
    """An EIP-7702 (type 4) transaction: a fresh account delegates to the Probe."""
    w3 = world.w3
    delegator = Account.create()
    world.alice.transact(to=delegator.address, value=10**18, gas=21_000)
    authorization = delegator.sign_authorization(
        {"chainId": node.chain_id, "address": world.probe.address, "nonce": 1}
    )
    signer = Signer(w3, delegator)
    signed = signer.sign(
        type=4,
        to=delegator.address,
        data=world.probe_set_data,
        gas=200_000,
        authorizationList=[authorization],
    )
    receipt = wait_receipt(w3, w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["type"] == 4
    return receipt["transactionHash"].to_0x_hex()


def _cases() -> list[tuple[str, str, Callable[[SimpleNamespace], list[Any]]]]:
    """(case id, method, params builder) for every method, with real parameters."""
    z = "0x" + "00" * 20
    cases: list[tuple[str, str, Callable[[SimpleNamespace], list[Any]]]] = [
        ("plain", "web3_clientVersion", lambda w: []),
        ("bytes", "web3_sha3", lambda w: ["0x68656c6c6f"]),
        ("empty", "web3_sha3", lambda w: ["0x"]),
        ("plain", "net_version", lambda w: []),
        ("plain", "net_listening", lambda w: []),
        ("plain", "net_peerCount", lambda w: []),
        ("plain", "eth_chainId", lambda w: []),
        ("plain", "eth_syncing", lambda w: []),
        ("plain", "eth_blockNumber", lambda w: []),
        ("plain", "eth_accounts", lambda w: []),
        ("plain", "eth_coinbase", lambda w: []),
        ("plain", "eth_gasPrice", lambda w: []),
        ("plain", "eth_maxPriorityFeePerGas", lambda w: []),
        ("plain", "eth_baseFee", lambda w: []),
        ("plain", "eth_blobBaseFee", lambda w: []),
        ("plain", "eth_config", lambda w: []),
        ("plain", "eth_capabilities", lambda w: []),
        ("rewards", "eth_feeHistory", lambda w: ["0x4", w.block_number, [10, 50, 90]]),
        ("no-percentiles", "eth_feeHistory", lambda w: ["0x2", "latest", []]),
        ("pending", "eth_feeHistory", lambda w: ["0x3", "pending", [25, 75]]),
        ("genesis", "eth_feeHistory", lambda w: ["0x1", "earliest", [50]]),
        ("account", "eth_getBalance", lambda w: [w.alice.address, "latest"]),
        ("empty-account", "eth_getBalance", lambda w: [fresh_account().address, "earliest"]),
        ("by-hash", "eth_getBalance", lambda w: [w.alice.address, w.block_hash]),
        ("eip1898-hash", "eth_getBalance", lambda w: [w.alice.address, {"blockHash": w.block_hash}]),
        ("by-hash", "eth_getCode", lambda w: [w.token.address, w.block_hash]),
        ("by-hash", "eth_getStorageAt", lambda w: [w.probe.address, "0x0", w.block_hash]),
        ("by-hash", "eth_getTransactionCount", lambda w: [w.alice.address, w.block_hash]),
        ("contract", "eth_getCode", lambda w: [w.token.address, "latest"]),
        ("no-code", "eth_getCode", lambda w: [w.alice.address, w.block_number]),
        ("slot-0", "eth_getStorageAt", lambda w: [w.probe.address, "0x0", "latest"]),
        ("slot-32-bytes", "eth_getStorageAt", lambda w: [w.probe.address, "0x" + "00" * 32, "latest"]),
        ("latest", "eth_getTransactionCount", lambda w: [w.alice.address, "latest"]),
        ("pending", "eth_getTransactionCount", lambda w: [w.bob.address, "pending"]),
        ("eip1898-number", "eth_getTransactionCount", lambda w: [w.alice.address, {"blockNumber": "0x0"}]),
        ("view", "eth_call", lambda w: [{"to": w.probe.address, "input": w.probe_get_data}, "latest"]),
        (
            "with-fees",
            "eth_call",
            lambda w: [
                {
                    "from": w.alice.address,
                    "to": w.probe.address,
                    "input": w.probe_get_data,
                    "maxFeePerGas": hex(10 * GWEI),
                    "maxPriorityFeePerGas": hex(GWEI),
                },
                "latest",
            ],
        ),
        ("by-hash", "eth_call", lambda w: [{"to": w.probe.address, "input": w.probe_get_data}, w.block_hash]),
        (
            "eip1898-hash",
            "eth_call",
            lambda w: [
                {"to": w.probe.address, "input": w.probe_get_data},
                {"blockHash": w.block_hash, "requireCanonical": True},
            ],
        ),
        ("transfer", "eth_estimateGas", lambda w: [{"from": w.alice.address, "to": z, "value": "0x1"}]),
        (
            "contract",
            "eth_estimateGas",
            lambda w: [{"from": w.alice.address, "to": w.probe.address, "input": w.probe_set_data}, "latest"],
        ),
        (
            "state-override",
            "eth_call",
            lambda w: [
                {"to": w.probe.address, "input": w.probe_get_data},
                "latest",
                {w.probe.address: {"stateDiff": {"0x0": "0x" + "00" * 31 + "2a"}}},
            ],
        ),
        (
            "state-override",
            "eth_estimateGas",
            lambda w: [
                {"from": z, "to": w.alice.address, "value": hex(10**18)},
                "latest",
                {z: {"balance": hex(10**19)}},
            ],
        ),
        (
            "transfer",
            "eth_simulateV1",
            lambda w: [
                {"blockStateCalls": [{"calls": [{"from": w.alice.address, "to": z, "value": "0x1"}]}]}
            ],
        ),
        (
            "traced-full",
            "eth_simulateV1",
            lambda w: [
                {
                    "blockStateCalls": [
                        {
                            "blockOverrides": {"baseFeePerGas": "0x0"},
                            "calls": [
                                {"from": w.alice.address, "to": w.probe.address, "input": w.probe_set_data},
                                {
                                    "from": w.alice.address,
                                    "to": w.probe.address,
                                    "input": w.probe_revert_data,
                                },
                            ],
                        },
                        {
                            "blockOverrides": {"number": hex(int(w.w3.eth.block_number) + 5)},
                            "stateOverrides": {z: {"balance": hex(10**18)}},
                            "calls": [{"from": z, "to": w.probe.address, "value": "0x5"}],
                        },
                    ],
                    "traceTransfers": True,
                    "returnFullTransactions": True,
                },
                "latest",
            ],
        ),
        (
            "validation",
            "eth_simulateV1",
            lambda w: [
                {
                    "blockStateCalls": [
                        {
                            "calls": [
                                {
                                    "from": w.alice.address,
                                    "to": z,
                                    "value": "0x1",
                                    "maxFeePerGas": hex(10**11),
                                    "maxPriorityFeePerGas": "0x1",
                                }
                            ]
                        }
                    ],
                    "validation": True,
                },
                w.block_number,
            ],
        ),
        (
            "transfer",
            "eth_sendRawTransaction",
            lambda w: [
                w.alice.sign(to=fresh_account().address, value=1, gas=21_000).raw_transaction.to_0x_hex()
            ],
        ),
        (
            "private",
            "conclave_sendRawPrivateTransaction",
            lambda w: [
                w.alice.sign(to=fresh_account().address, value=1, gas=21_000).raw_transaction.to_0x_hex(),
                {"privateFor": [w.bob.address]},
            ],
        ),
        ("latest", "qbft_getValidatorsByBlockNumber", lambda w: ["latest"]),
        ("genesis", "qbft_getValidatorsByBlockNumber", lambda w: ["0x0"]),
        ("mined", "qbft_getValidatorsByBlockHash", lambda w: [w.block_hash]),
        ("plain", "qbft_getRequestTimeoutSeconds", lambda w: []),
        ("default", "qbft_getSignerMetrics", lambda w: []),
        ("range", "qbft_getSignerMetrics", lambda w: ["0x1", "latest"]),
        ("latest", "conclave_getBlockCertificate", lambda w: ["latest"]),
        ("unknown-genesis", "conclave_getBlockCertificate", lambda w: ["0x0"]),
        ("mined", "conclave_getTransactionProof", lambda w: [w.tx_hashes[2]]),
        ("unknown", "conclave_getTransactionProof", lambda w: [UNKNOWN_HASH]),
        ("plain", "conclave_consensusStatus", lambda w: []),
        ("mined", "eth_getTransactionByHash", lambda w: [w.tx_hashes[2]]),
        ("pending", "eth_getTransactionByHash", lambda w: [w.pending_hash]),
        ("unknown", "eth_getTransactionByHash", lambda w: [UNKNOWN_HASH]),
        ("unknown", "eth_getTransactionReceipt", lambda w: [UNKNOWN_HASH]),
        ("pending", "eth_getTransactionReceipt", lambda w: [w.pending_hash]),
        ("hashes", "eth_getBlockByNumber", lambda w: [w.block_number, False]),
        ("full", "eth_getBlockByNumber", lambda w: [w.block_number, True]),
        ("genesis", "eth_getBlockByNumber", lambda w: ["earliest", True]),
        ("latest", "eth_getBlockByNumber", lambda w: ["latest", False]),
        ("finalized", "eth_getBlockByNumber", lambda w: ["finalized", False]),
        ("safe", "eth_getBlockByNumber", lambda w: ["safe", True]),
        ("pending", "eth_getBlockByNumber", lambda w: ["pending", False]),
        ("unknown", "eth_getBlockByNumber", lambda w: ["0xfffffff", False]),
        ("hashes", "eth_getBlockByHash", lambda w: [w.block_hash, False]),
        ("full", "eth_getBlockByHash", lambda w: [w.block_hash, True]),
        ("unknown", "eth_getBlockByHash", lambda w: [UNKNOWN_HASH, True]),
        ("block", "eth_getBlockTransactionCountByNumber", lambda w: [w.block_number]),
        ("genesis", "eth_getBlockTransactionCountByNumber", lambda w: ["earliest"]),
        ("unknown", "eth_getBlockTransactionCountByNumber", lambda w: ["0xfffffff"]),
        ("block", "eth_getBlockTransactionCountByHash", lambda w: [w.block_hash]),
        ("unknown", "eth_getBlockTransactionCountByHash", lambda w: [UNKNOWN_HASH]),
        ("unknown-index", "eth_getTransactionByBlockNumberAndIndex", lambda w: [w.block_number, "0x63"]),
        ("unknown", "eth_getTransactionByBlockHashAndIndex", lambda w: [UNKNOWN_HASH, "0x0"]),
        ("by-number", "eth_getBlockReceipts", lambda w: [w.block_number]),
        ("by-hash", "eth_getBlockReceipts", lambda w: [w.block_hash]),
        ("eip1898-hash", "eth_getBlockReceipts", lambda w: [{"blockHash": w.block_hash}]),
        ("empty-block", "eth_getBlockReceipts", lambda w: ["earliest"]),
        ("unknown", "eth_getBlockReceipts", lambda w: ["0xfffffff"]),
        (
            "range",
            "eth_getLogs",
            lambda w: [{"fromBlock": "0x0", "toBlock": "latest", "address": w.probe.address}],
        ),
        ("block-hash", "eth_getLogs", lambda w: [{"blockHash": w.block_hash}]),
        (
            "topics",
            "eth_getLogs",
            lambda w: [
                {
                    "fromBlock": "earliest",
                    "topics": [
                        Web3.keccak(text="Transfer(address,address,uint256)").to_0x_hex(),
                        None,
                        ["0x" + "00" * 12 + w.bob.address[2:].lower(), UNKNOWN_HASH],
                    ],
                }
            ],
        ),
        ("none", "eth_getLogs", lambda w: [{"fromBlock": "0x0", "toBlock": "0x0"}]),
        ("logs", "eth_newFilter", lambda w: [{"fromBlock": "0x0", "address": w.probe.address}]),
        ("block-hash", "eth_newFilter", lambda w: [{"blockHash": w.block_hash}]),
        ("plain", "eth_newBlockFilter", lambda w: []),
        ("plain", "eth_newPendingTransactionFilter", lambda w: []),
        ("logs", "eth_getFilterChanges", lambda w: [w.filters["logs"]]),
        ("blocks", "eth_getFilterChanges", lambda w: [w.filters["blocks"]]),
        ("pending", "eth_getFilterChanges", lambda w: [w.filters["pending"]]),
        ("logs", "eth_getFilterLogs", lambda w: [w.filters["logs"]]),
        ("installed", "eth_uninstallFilter", lambda w: [w.new_filter()]),
        (
            "call",
            "eth_createAccessList",
            lambda w: [{"from": w.alice.address, "to": w.probe.address, "input": "0x6d4ce63c"}],
        ),
        ("contract", "eth_getProof", lambda w: [w.probe.address, ["0x0", "0x1"], w.block_number]),
        ("absent", "eth_getProof", lambda w: [fresh_account().address, [], "latest"]),
        ("slots", "eth_getStorageValues", lambda w: [{w.probe.address: ["0x0"], z: ["0x1"]}, "latest"]),
        ("plain", "rpc.discover", lambda w: []),
        ("block", "debug_getRawHeader", lambda w: [w.block_number]),
        ("block", "debug_getRawBlock", lambda w: [w.block_number]),
        ("block", "debug_getRawReceipts", lambda w: [w.block_number]),
        ("transaction", "debug_getRawTransaction", lambda w: [w.tx_hashes[0]]),
        ("plain", "debug_getBadBlocks", lambda w: []),
        ("block", "eth_getBlockAccessList", lambda w: [w.block_number]),
        ("by-hash", "eth_getBlockAccessList", lambda w: [w.block_hash]),
        ("genesis", "eth_getBlockAccessList", lambda w: ["earliest"]),
        ("unknown-block", "eth_getBlockAccessList", lambda w: ["0xfffffff"]),
        ("block", "debug_getRawBlockAccessList", lambda w: [w.block_number]),
        ("genesis", "debug_getRawBlockAccessList", lambda w: ["earliest"]),
        ("struct", "debug_traceTransaction", lambda w: [w.tx_hashes[2]]),
        ("call-tracer", "debug_traceTransaction", lambda w: [w.tx_hashes[3], {"tracer": "callTracer"}]),
        (
            "memory",
            "debug_traceTransaction",
            lambda w: [w.tx_hashes[4], {"enableMemory": True, "enableReturnData": True, "limit": 300}],
        ),
        ("struct", "debug_traceBlockByNumber", lambda w: [w.block_number]),
        ("no-stack", "debug_traceBlockByHash", lambda w: [w.block_hash, {"disableStack": True}]),
        ("call-tracer", "debug_traceBlockByHash", lambda w: [w.block_hash, {"tracer": "callTracer"}]),
        (
            "struct",
            "debug_traceCall",
            lambda w: [{"to": w.probe.address, "input": w.probe_get_data}, "latest"],
        ),
        (
            "call-tracer",
            "debug_traceCall",
            lambda w: [
                {"to": w.probe.address, "input": w.probe_set_data},
                "latest",
                {"tracer": "callTracer"},
            ],
        ),
        ("plain", "eth_mining", lambda w: []),
        ("plain", "eth_hashrate", lambda w: []),
        ("known", "eth_getUncleCountByBlockHash", lambda w: [w.block_hash]),
        ("unknown", "eth_getUncleCountByBlockHash", lambda w: [UNKNOWN_HASH]),
        ("known", "eth_getUncleCountByBlockNumber", lambda w: [w.block_number]),
        ("unknown-uncle", "eth_getUncleByBlockHashAndIndex", lambda w: [w.block_hash, "0x0"]),
        ("unknown-uncle", "eth_getUncleByBlockNumberAndIndex", lambda w: [w.block_number, "0x0"]),
        ("plain", "txpool_status", lambda w: []),
        ("message", "eth_sign", lambda w: [w.alice.address, "0x68656c6c6f"]),
        ("message", "personal_sign", lambda w: ["0x68656c6c6f", w.alice.address]),
        ("order", "eth_signTypedData_v4", lambda w: [w.alice.address, TYPED_DATA]),
        ("transfer", "eth_signTransaction", lambda w: [{"from": w.alice.address, "to": z, "value": "0x1"}]),
        ("eip1559", "eth_fillTransaction", lambda w: [{"from": w.alice.address, "to": z, "value": "0x1"}]),
        (
            "legacy",
            "eth_fillTransaction",
            lambda w: [{"from": w.alice.address, "to": z, "gasPrice": "0x1dcd65000"}],
        ),
        (
            "access-list",
            "eth_fillTransaction",
            lambda w: [
                {
                    "type": "0x1",
                    "from": w.alice.address,
                    "to": w.probe.address,
                    "input": w.probe_get_data,
                    "accessList": [{"address": w.probe.address, "storageKeys": ["0x" + "00" * 32]}],
                }
            ],
        ),
        ("create", "eth_fillTransaction", lambda w: [{"from": w.bob.address, "input": "0x6000"}]),
        ("plain", "txpool_content", lambda w: []),
        ("plain", "txpool_inspect", lambda w: []),
        ("waiting", "txpool_contentFrom", lambda w: [w.bob.address]),
        ("nobody", "txpool_contentFrom", lambda w: [z]),
    ]
    cases += [
        ("transfer", "eth_sendTransaction", lambda w: [{"from": w.bob.address, "to": z, "value": "0x1"}]),
        ("plain", "evm_snapshot", lambda w: []),
        ("absent-snapshot", "evm_revert", lambda w: ["0x999"]),
        ("none", "evm_increaseTime", lambda w: [0]),
        ("far", "evm_setNextBlockTimestamp", lambda w: [hex(4_000_000_000)]),
        ("plain", "evm_mine", lambda w: []),
        ("one", "hardhat_mine", lambda w: ["0x1"]),
        ("one", "anvil_mine", lambda w: ["0x1"]),
    ]
    patched = "0x" + "5e" * 20  # an account no other case reads
    for prefix in ("hardhat", "anvil"):
        cases += [
            ("rich", f"{prefix}_setBalance", lambda w: [patched, hex(10**20)]),
            ("used", f"{prefix}_setNonce", lambda w: [patched, "0x9"]),
            ("stop", f"{prefix}_setCode", lambda w: [patched, "0x00"]),
            ("word", f"{prefix}_setStorageAt", lambda w: [patched, "0x1", "0x" + "00" * 31 + "07"]),
        ]
    for index in range(6):
        cases.append((f"type-{index}", "eth_getTransactionByHash", lambda w, i=index: [w.tx_hashes[i]]))
        cases.append((f"receipt-{index}", "eth_getTransactionReceipt", lambda w, i=index: [w.tx_hashes[i]]))
        cases.append(
            (
                f"index-{index}",
                "eth_getTransactionByBlockNumberAndIndex",
                lambda w, i=index: [w.block_number, hex(i)],
            )
        )
        cases.append(
            (
                f"index-{index}",
                "eth_getTransactionByBlockHashAndIndex",
                lambda w, i=index: [w.block_hash, hex(i)],
            )
        )
    return cases


CASES = _cases()


def _request(method: str, params: list[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def call(node: DevNode, method: str, params: list[Any]) -> Any:
    answer = node.rpc(method, params)
    assert "error" not in answer, f"{method}{params!r:.200} -> {answer['error']}"
    return answer["result"]


def check(method: str, result: Any) -> None:
    if method in EXTENSIONS:
        spec = load_spec()
        errors = list(spec.validator(EXTENSIONS[method]).iter_errors(result))
        assert not errors, f"{method} result {result!r}: {errors[0].message}"
    else:
        validate_result(method, result)


@pytest.mark.parametrize(("case", "method", "params"), CASES, ids=[f"{m}[{c}]" for c, m, _ in CASES])
def test_result_matches_the_spec(
    node: DevNode, world: SimpleNamespace, case: str, method: str, params: Any
) -> None:
    sent = params(world)
    if method == "eth_getTransactionByHash" and case == "pending":
        _check_pending_transaction(call(node, method, sent))
        return
    # EIP-1898 block objects are not in the spec's BlockNumberOrTagOrHash (which names a
    # block by a bare hash string); clients send them, so the node takes both.
    if method not in EXTENSIONS and not case.startswith("eip1898"):
        # State overrides are geth's third parameter of eth_call and eth_estimateGas, which
        # the spec does not define: the parameters the spec defines are checked.
        validate_params(method, sent[:2] if case.startswith("state-override") else sent)
    if method == "conclave_sendRawPrivateTransaction":  # sent signed in as the sender
        token = sign_in(node.rpc_url, world.alice.account.key.hex())
        answer = httpx.post(
            f"{node.rpc_url.rstrip('/')}/rpc/{token}", json=_request(method, sent), timeout=30
        )
        result = answer.json()["result"]
    else:
        result = call(node, method, sent)
    check(method, result)
    # null is valid for most of these methods; it is only right for what does not exist.
    null_expected = EXTENSIONS.get(method) == {"type": "null"} or case.startswith("unknown")
    if null_expected or (method, case) == ("eth_getTransactionReceipt", "pending"):
        assert result is None, f"{method}[{case}] should be null, got {result!r:.200}"
    else:
        assert result is not None, f"{method}[{case}] names something that exists, got null"


def _check_pending_transaction(result: Any) -> None:
    """A pending transaction: the signed transaction's schema, with null block context.

    The spec's TransactionInfo requires a block hash, number and index; for a transaction
    still in the pool every client returns null there, so those are checked separately.
    """
    assert result is not None
    for field in ("blockHash", "blockNumber", "transactionIndex"):
        assert result[field] is None, result
    spec = load_spec()
    signed = {
        k: v
        for k, v in result.items()
        if k not in ("blockHash", "blockNumber", "blockTimestamp", "transactionIndex")
    }
    errors = list(spec.validator(spec.schema("TransactionSigned")).iter_errors(signed))
    assert not errors, errors[0].message


def test_every_method_is_covered() -> None:
    covered = {method for _, method, _ in CASES}
    assert set(METHODS) - covered == set(), "methods without a conformance case"
    assert covered - set(METHODS) == set(), "cases for methods the node does not serve"


def test_implemented_methods_are_spec_methods_or_listed_extensions() -> None:
    spec = load_spec()
    implemented = set(METHODS)
    outside = {name for name in implemented if name not in spec}
    assert outside == set(EXTENSIONS), (
        f"not in the spec and not a listed extension: {sorted(outside - set(EXTENSIONS))}"
    )
    for name in EXTENSIONS:
        assert name not in spec, f"{name} is in the spec now: validate it against the spec"


def test_every_transaction_type_validates(node: DevNode, world: SimpleNamespace, set_code_tx: str) -> None:
    tx = call(node, "eth_getTransactionByHash", [set_code_tx])
    assert tx["type"] == "0x4" and tx["authorizationList"]
    validate_result("eth_getTransactionByHash", tx)
    receipt = call(node, "eth_getTransactionReceipt", [set_code_tx])
    assert receipt["status"] == "0x1"
    validate_result("eth_getTransactionReceipt", receipt)
    block = call(node, "eth_getBlockByNumber", [receipt["blockNumber"], True])
    validate_result("eth_getBlockByNumber", block)
    validate_result("eth_getBlockReceipts", call(node, "eth_getBlockReceipts", [receipt["blockNumber"]]))
    # The delegation took effect: the account's code is the EIP-7702 designator.
    code = call(node, "eth_getCode", [tx["from"], "latest"])
    assert code == "0xef0100" + world.probe.address[2:].lower()
    # The call ran the Probe's set(1) in the delegating account's own storage.
    assert int(call(node, "eth_getStorageAt", [tx["from"], "0x0", "latest"]), 16) == 1
    types = {int(call(node, "eth_getTransactionByHash", [h])["type"], 16) for h in world.tx_hashes}
    assert types == {0, 1, 2}


def test_block_with_every_kind_of_receipt(node: DevNode, world: SimpleNamespace) -> None:
    """The mixed block's receipts and logs are what the cases above validated."""
    receipts = call(node, "eth_getBlockReceipts", [world.block_number])
    assert [r["type"] for r in receipts] == ["0x0", "0x1", "0x2", "0x2", "0x2", "0x2"]
    assert [r["status"] for r in receipts] == ["0x1", "0x1", "0x1", "0x0", "0x1", "0x1"]
    assert receipts[4]["contractAddress"] is not None and receipts[4]["to"] is None
    assert len(receipts[2]["logs"]) == 3 + 3
    logs = call(node, "eth_getLogs", [{"blockHash": world.block_hash}])
    assert logs == [log for r in receipts for log in r["logs"]]
    validate_result("eth_getLogs", logs)
    full = call(node, "eth_getBlockByHash", [world.block_hash, True])
    assert [tx["hash"] for tx in full["transactions"]] == world.tx_hashes


# -- error codes ----------------------------------------------------------------------


def _refusals(w: SimpleNamespace) -> dict[str, bytes]:
    """Raw transactions the node must refuse, one per reason."""
    alice = w.alice
    to = fresh_account().address
    base = next_base_fee(w.w3)
    good = alice.sign(to=to, value=1, gas=21_000)
    nonce = alice.nonce()
    waiting = alice.sign(nonce=nonce + 500, to=to, value=1, gas=21_000)
    w.w3.eth.send_raw_transaction(waiting.raw_transaction)
    unprotected = alice.fill(to=to, value=1, gas=21_000, type=0)
    del unprotected["chainId"]
    return {
        "nonce too low": alice.sign(nonce=0, to=to, value=1, gas=21_000).raw_transaction,
        "nonce too high": alice.sign(nonce=nonce + 5_000, to=to, value=1, gas=21_000).raw_transaction,
        "insufficient funds": Signer(w.w3, Account.create())
        .sign(nonce=0, to=to, value=1, gas=21_000)
        .raw_transaction,
        "intrinsic gas": alice.sign(to=to, value=1, gas=20_000).raw_transaction,
        "block gas limit": alice.sign(to=to, value=1, gas=30_000_001).raw_transaction,
        "base fee": alice.sign(
            to=to, value=1, gas=21_000, maxFeePerGas=base - 1, maxPriorityFeePerGas=0
        ).raw_transaction,
        "priority above max": alice.sign(
            to=to, value=1, gas=21_000, maxFeePerGas=base + 1, maxPriorityFeePerGas=base + 2
        ).raw_transaction,
        "already known": waiting.raw_transaction,
        "underpriced": alice.sign(nonce=nonce + 500, to=to, value=2, gas=21_000).raw_transaction,
        "undecodable": bytes.fromhex("f8ff00"),
        "wrong chain id": alice.sign(to=to, value=1, gas=21_000, chainId=1).raw_transaction,
        "unprotected": alice.account.sign_transaction(unprotected).raw_transaction,
        "bad signature": good.raw_transaction[:-1] + bytes([good.raw_transaction[-1] ^ 0xFF]),
        "oversized": alice.sign(to=to, data=b"\x01" * (129 * 1024), gas=3_000_000).raw_transaction,
        "blob type": b"\x03" + good.raw_transaction[1:],
    }


def test_send_raw_transaction_error_codes_are_spec_codes(node: DevNode, world: SimpleNamespace) -> None:
    allowed = load_spec().method("eth_sendRawTransaction").error_codes
    assert allowed, "the spec lists error codes for eth_sendRawTransaction"
    seen = {}
    for reason, raw in _refusals(world).items():
        answer = node.rpc("eth_sendRawTransaction", [HexBytes(raw).to_0x_hex()])
        assert "error" in answer, f"{reason}: accepted {answer}"
        seen[reason] = answer["error"]["code"]
    outside = {reason: code for reason, code in seen.items() if code not in allowed}
    assert not outside, f"codes outside the spec's list {sorted(allowed)}: {outside}"
    # The reasons the spec names a code for get that code.
    assert seen["nonce too low"] == 1
    assert seen["nonce too high"] == 2
    assert seen["intrinsic gas"] == 800
    assert seen["block gas limit"] == 803
    assert seen["priority above max"] == 804
    assert seen["base fee"] == 806
    assert seen["insufficient funds"] == 809
    assert seen["already known"] == 1000


def test_call_and_estimate_revert_codes_are_spec_codes(node: DevNode, world: SimpleNamespace) -> None:
    data = world.probe.functions.revertWithReason()._encode_transaction_data()
    for method in ("eth_call", "eth_estimateGas"):
        answer = node.rpc(method, [{"to": world.probe.address, "input": data}, "latest"])
        assert answer["error"]["code"] in load_spec().method(method).error_codes
        assert answer["error"]["code"] == 3
        assert HexBytes(answer["error"]["data"])[:4] == Web3.keccak(text="Error(string)")[:4]
