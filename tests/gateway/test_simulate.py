"""eth_simulateV1 and the state overrides of eth_call / eth_estimateGas, over JSON-RPC in process."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.node import Node
from tests.gateway.inprocess import ALICE, BOB, call, error_of, post, request
from tests.support.spec import validate_result

A, B = ALICE.address, BOB.address
ZERO = "0x" + "00" * 20
CONTRACT = "0x" + "00" * 18 + "c0de"
RETURN_42 = "0x602a60005260206000f3"
"""PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN."""
RETURN_SLOT_0 = "0x60005460005260206000f3"
"""SLOAD(0), returned as one word."""
IDENTITY = "0x" + "00" * 19 + "04"
WORD_42 = "0x" + "00" * 31 + "2a"


def simulate(node: Node, payload: dict[str, Any], block: str = "latest") -> Any:
    result = call(node, "eth_simulateV1", payload, block)
    validate_result("eth_simulateV1", result)
    return result


def simulate_error(node: Node, payload: Any, *rest: Any) -> dict[str, Any]:
    return error_of(node, request("eth_simulateV1", [payload, *rest]))


# -- eth_call and eth_estimateGas ----------------------------------------------------------


def test_eth_call_runs_against_overridden_code_and_storage(shared_node: Node) -> None:
    overrides = {CONTRACT: {"code": RETURN_SLOT_0, "stateDiff": {"0x0": WORD_42}}}
    assert call(shared_node, "eth_call", {"to": CONTRACT}, "latest", overrides) == WORD_42
    assert call(shared_node, "eth_call", {"to": CONTRACT}, "latest") == "0x"


def test_eth_call_with_a_moved_precompile(shared_node: Node) -> None:
    overrides = {IDENTITY: {"movePrecompileToAddress": CONTRACT}}
    assert call(shared_node, "eth_call", {"to": CONTRACT, "input": "0xabcd"}, "latest", overrides) == "0xabcd"


def test_eth_estimate_gas_with_an_overridden_balance(shared_node: Node) -> None:
    poor = "0x" + "00" * 18 + "fee0"
    transfer = {"from": poor, "to": B, "value": hex(10**18)}
    assert error_of(shared_node, request("eth_estimateGas", [transfer, "latest"]))["code"] == 809
    overrides = {poor: {"balance": hex(2 * 10**18)}}
    assert call(shared_node, "eth_estimateGas", transfer, "latest", overrides) == hex(21_000)


def test_named_parameters_take_overrides_too(shared_node: Node) -> None:
    params = {"transaction": {"to": CONTRACT}, "stateOverrides": {CONTRACT: {"code": RETURN_42}}}
    answer = post(shared_node, request("eth_call", params))
    assert answer["result"] == WORD_42


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ([], "expected an object from addresses"),
        ({"0x12": {}}, "account '0x12': expected 20 bytes"),
        ({CONTRACT: []}, "expected an object of balance"),
        ({CONTRACT: {"balanse": "0x1"}}, "unknown field(s) 'balanse'"),
        ({CONTRACT: {"balance": 1}}, "balance: expected a hex quantity"),
        ({CONTRACT: {"nonce": hex(2**64)}}, "nonce: expected a quantity of at most 64 bits"),
        ({CONTRACT: {"code": "0x1"}}, "code: invalid hex data"),
        ({CONTRACT: {"state": {}, "stateDiff": {}}}, "not both"),
        ({CONTRACT: {"state": []}}, "state must be an object"),
        ({CONTRACT: {"stateDiff": {"0x" + "1" * 65: "0x1"}}}, "stateDiff slot"),
        ({CONTRACT: {"stateDiff": {"0x1": 1}}}, "expected a 32-byte value"),
        ({CONTRACT: {"movePrecompileToAddress": "0x1"}}, "movePrecompileToAddress"),
        ({CONTRACT.upper().replace("0X", "0x"): {}, CONTRACT: {}}, "overridden twice"),
    ],
    ids=[
        "not-an-object",
        "short-address",
        "account-not-an-object",
        "unknown-field",
        "balance-not-hex",
        "nonce-too-big",
        "odd-code",
        "state-and-diff",
        "state-not-an-object",
        "slot-too-long",
        "value-not-hex",
        "bad-destination",
        "same-address-twice",
    ],
)
def test_bad_overrides_answer_invalid_params(shared_node: Node, overrides: Any, words: str) -> None:
    for method in ("eth_call", "eth_estimateGas"):
        error = error_of(shared_node, request(method, [{"to": CONTRACT}, "latest", overrides]))
        assert error["code"] == -32602, error
        assert "argument 2 (stateOverrides)" in error["message"] and words in error["message"], error


def test_overrides_that_cannot_apply_answer_invalid_input(shared_node: Node) -> None:
    overrides = {CONTRACT: {"movePrecompileToAddress": B}}
    error = error_of(shared_node, request("eth_call", [{"to": CONTRACT}, "latest", overrides]))
    assert error["code"] == -32000 and "not a precompile" in error["message"]


# -- eth_simulateV1 ------------------------------------------------------------------------


def test_a_simulated_transfer_and_its_block(shared_node: Node) -> None:
    head = call(shared_node, "eth_getBlockByNumber", "latest", False)
    (block,) = simulate(shared_node, {"blockStateCalls": [{"calls": [{"from": A, "to": B, "value": "0x1"}]}]})
    assert block["number"] == hex(int(head["number"], 16) + 1)
    assert block["parentHash"] == head["hash"]
    assert block["baseFeePerGas"] == "0x0"
    assert block["calls"] == [
        {"status": "0x1", "returnData": "0x", "gasUsed": "0x5208", "maxUsedGas": "0x5208", "logs": []}
    ]
    assert len(block["transactions"]) == 1
    # Nothing was stored.
    assert call(shared_node, "eth_blockNumber") == head["number"]


def test_calls_build_on_each_other_across_blocks(shared_node: Node) -> None:
    payload = {
        "blockStateCalls": [
            {"stateOverrides": {CONTRACT: {"code": RETURN_SLOT_0}}, "calls": [{"to": CONTRACT}]},
            {"stateOverrides": {CONTRACT: {"state": {"0x0": WORD_42}}}, "calls": [{"to": CONTRACT}]},
            {"blockOverrides": {"number": "0xa", "time": "0xffff"}, "calls": [{"to": CONTRACT}]},
        ]
    }
    blocks = simulate(shared_node, payload)
    assert [b["calls"][0]["returnData"] for b in blocks if b["calls"]] == ["0x" + "00" * 32, WORD_42, WORD_42]
    assert [int(b["number"], 16) for b in blocks] == list(range(1, 11))
    assert blocks[-1]["timestamp"] == "0xffff"


def test_full_transactions_and_traced_transfers(shared_node: Node) -> None:
    payload = {
        "blockStateCalls": [{"calls": [{"from": A, "to": B, "value": "0x7"}]}],
        "traceTransfers": True,
        "returnFullTransactions": True,
    }
    (block,) = simulate(shared_node, payload)
    (tx,) = block["transactions"]
    assert (tx["from"], tx["to"], tx["value"], tx["blockHash"]) == (A, B, "0x7", block["hash"])
    (log,) = block["calls"][0]["logs"]
    assert log["address"].lower() == "0x" + "ee" * 20
    assert log["topics"][1:] == ["0x" + "00" * 12 + A[2:].lower(), "0x" + "00" * 12 + B[2:].lower()]
    assert (log["transactionHash"], log["blockHash"]) == (tx["hash"], block["hash"])


def test_a_revert_and_a_halt_are_call_results(shared_node: Node) -> None:
    revert_reason = "0x60006000fd"  # REVERT(0, 0)
    payload = {
        "blockStateCalls": [
            {
                "stateOverrides": {CONTRACT: {"code": revert_reason}, B: {"code": "0xfe"}},
                "calls": [{"to": CONTRACT}, {"to": B, "gas": "0x10000"}],
            }
        ]
    }
    reverted, halted = simulate(shared_node, payload)[0]["calls"]
    assert reverted["status"] == "0x0" and reverted["error"] == {
        "code": 3,
        "message": "execution reverted",
        "data": "0x",
    }
    assert halted["status"] == "0x0" and halted["error"]["code"] == -32015
    assert halted["error"]["message"].startswith("vm execution error") and halted["gasUsed"] == "0x10000"


def test_validation_uses_the_next_base_fee(shared_node: Node) -> None:
    fees = {"maxFeePerGas": hex(10**10), "maxPriorityFeePerGas": "0x0"}
    payload = {
        "blockStateCalls": [{"calls": [{"from": A, "to": B, "value": "0x1", **fees}]}],
        "validation": True,
    }
    (block,) = simulate(shared_node, payload)
    assert block["baseFeePerGas"] == call(shared_node, "eth_baseFee")
    assert block["calls"][0]["status"] == "0x1"


SPEC_CODES = [
    ({"calls": [{"from": A, "to": B, "nonce": "0x5", "maxFeePerGas": hex(10**10)}]}, True, -38011),
    ({"calls": [{"from": A, "to": B, "maxFeePerGas": "0x1"}]}, True, -38012),
    ({"calls": [{"from": A, "to": B, "gas": "0x5000"}]}, False, -38013),
    ({"calls": [{"from": ZERO, "to": B, "value": "0x1"}]}, False, -38014),
    ({"blockOverrides": {"gasLimit": "0x5000"}, "calls": [{"to": B, "gas": "0x6000"}]}, False, -38015),
    ({"blockOverrides": {"number": "0x0"}}, False, -38020),
    ({"blockOverrides": {"time": "0x1"}}, False, -38021),
    ({"stateOverrides": {IDENTITY: {"movePrecompileToAddress": IDENTITY}}}, False, -38022),
    (
        {
            "stateOverrides": {
                IDENTITY: {"movePrecompileToAddress": CONTRACT},
                "0x" + "00" * 19 + "02": {"movePrecompileToAddress": CONTRACT},
            }
        },
        False,
        -38023,
    ),
    ({"calls": [{"from": A, "input": "0x" + "00" * 49_153}]}, False, -38025),
    ({"blockOverrides": {"number": "0x1000"}}, False, -38026),
]


@pytest.mark.parametrize(
    ("block", "validation", "code"), SPEC_CODES, ids=[str(code) for _, _, code in SPEC_CODES]
)
def test_refusals_answer_the_spec_codes(shared_node: Node, block: Any, validation: bool, code: int) -> None:
    error = simulate_error(shared_node, {"blockStateCalls": [block], "validation": validation})
    assert error["code"] == code, error
    assert error["message"]


def test_the_block_count_is_bounded(shared_node: Node) -> None:
    error = simulate_error(shared_node, {"blockStateCalls": [{}] * 257})
    assert error["code"] == -38026 and "at most 256" in error["message"]


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ([], "expected an object with blockStateCalls"),
        ({}, "blockStateCalls must be an array"),
        ({"blockStateCalls": {}}, "blockStateCalls must be an array"),
        ({"blockStateCalls": [], "validate": True}, "unknown field(s) 'validate'"),
        ({"blockStateCalls": [], "validation": "yes"}, "validation: expected true or false"),
        ({"blockStateCalls": [1]}, "blockStateCalls[0]: expected an object"),
        ({"blockStateCalls": [{"call": []}]}, "unknown field(s) 'call'"),
        ({"blockStateCalls": [{"calls": {}}]}, "calls must be an array"),
        ({"blockStateCalls": [{"calls": [1]}]}, "calls[0]: expected a transaction object"),
        ({"blockStateCalls": [{"calls": [{"to": "0x1"}]}]}, "calls[0]"),
        ({"blockStateCalls": [{"blockOverrides": []}]}, "blockOverrides must be an object"),
        ({"blockStateCalls": [{"blockOverrides": {"numbr": "0x1"}}]}, "unknown field(s) 'numbr'"),
        ({"blockStateCalls": [{"blockOverrides": {"number": hex(2**64)}}]}, "blockOverrides.number"),
        ({"blockStateCalls": [{"blockOverrides": {"feeRecipient": "0x"}}]}, "blockOverrides.feeRecipient"),
        ({"blockStateCalls": [{"blockOverrides": {"prevRandao": hex(2**256)}}]}, "blockOverrides.prevRandao"),
        ({"blockStateCalls": [{"blockOverrides": {"blobBaseFee": "0x1"}}]}, "carries no blobs"),
        ({"blockStateCalls": [{"blockOverrides": {"withdrawals": [{}]}}]}, "no beacon chain"),
        ({"blockStateCalls": [{"stateOverrides": {ZERO: {"state": 1}}}]}, "stateOverrides: account"),
    ],
    ids=[
        "not-an-object",
        "no-block-state-calls",
        "block-state-calls-not-an-array",
        "unknown-flag",
        "flag-not-boolean",
        "block-not-an-object",
        "unknown-block-field",
        "calls-not-an-array",
        "call-not-an-object",
        "bad-call-address",
        "block-overrides-not-an-object",
        "unknown-block-override",
        "number-too-big",
        "bad-fee-recipient",
        "randao-too-big",
        "blob-base-fee",
        "withdrawals",
        "bad-state-override",
    ],
)
def test_bad_payloads_answer_invalid_params(shared_node: Node, payload: Any, words: str) -> None:
    error = simulate_error(shared_node, payload)
    assert error["code"] == -32602, error
    assert "argument 0 (payload)" in error["message"] and words in error["message"], error


def test_an_unknown_base_block(shared_node: Node) -> None:
    error = simulate_error(shared_node, {"blockStateCalls": [{}]}, "0x999")
    assert error["code"] == -32001


# -- fuzzing ---------------------------------------------------------------------------------

_quantities = st.one_of(
    st.sampled_from(["0x0", "0x1", "0x5208", hex(2**64 - 1), hex(2**256 - 1), "0x", "0x01", 7]),
    st.integers(0, 2**70).map(hex),
)
_addresses = st.sampled_from([A, B, ZERO, CONTRACT, IDENTITY, "0x" + "ee" * 20, "0x12"])
_codes = st.sampled_from(["0x", "0xfe", "0x00", RETURN_42, RETURN_SLOT_0, "0x60006000fd", "0x5b600056"])
_words = st.sampled_from(["0x0", WORD_42, "0x" + "ff" * 32, "0x" + "1" * 65])
_accounts = st.fixed_dictionaries(
    {},
    optional={
        "balance": _quantities,
        "nonce": _quantities,
        "code": _codes,
        "state": st.dictionaries(_words, _words, max_size=2),
        "stateDiff": st.dictionaries(_words, _words, max_size=2),
        "movePrecompileToAddress": _addresses,
    },
)
_calls = st.fixed_dictionaries(
    {},
    optional={
        "from": _addresses,
        "to": _addresses | st.none(),
        "gas": _quantities,
        "gasPrice": _quantities,
        "maxFeePerGas": _quantities,
        "maxPriorityFeePerGas": _quantities,
        "value": _quantities,
        "input": _codes,
        "nonce": _quantities,
    },
)
_block_overrides = st.fixed_dictionaries(
    {},
    optional={
        "number": _quantities,
        "time": _quantities,
        "gasLimit": _quantities,
        "feeRecipient": _addresses,
        "prevRandao": _quantities,
        "baseFeePerGas": _quantities,
    },
)
_blocks = st.fixed_dictionaries(
    {},
    optional={
        "blockOverrides": _block_overrides,
        "stateOverrides": st.dictionaries(_addresses, _accounts, max_size=2),
        "calls": st.lists(_calls, max_size=3),
    },
)
_payloads = st.fixed_dictionaries(
    {"blockStateCalls": st.lists(_blocks, max_size=3)},
    optional={
        "validation": st.booleans(),
        "traceTransfers": st.booleans(),
        "returnFullTransactions": st.booleans(),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(payload=_payloads)
def test_no_payload_makes_simulation_fail_inside(shared_node: Node, payload: dict[str, Any]) -> None:
    answer = post(shared_node, request("eth_simulateV1", [payload]))
    if "error" in answer:
        assert answer["error"]["code"] != -32603, (payload, answer["error"])
    else:
        validate_result("eth_simulateV1", answer["result"])


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(call_object=_calls, overrides=st.dictionaries(_addresses, _accounts, max_size=3))
def test_no_overrides_make_a_call_fail_inside(
    shared_node: Node, call_object: dict[str, Any], overrides: dict[str, Any]
) -> None:
    for method in ("eth_call", "eth_estimateGas"):
        answer = post(shared_node, request(method, [call_object, "latest", overrides]))
        assert answer.get("error", {}).get("code") != -32603, (method, call_object, overrides, answer)
