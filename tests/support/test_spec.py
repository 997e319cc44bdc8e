"""Tests for the execution-apis spec loader (``tests/support/spec.py``)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from .spec import (
    COMPONENTS_URI,
    ONEOF_AS_ANYOF,
    SPEC_ROOT,
    load_spec,
    validate_params,
    validate_result,
)

SPEC = load_spec()

# --------------------------------------------------------------------------
# Examples in the vendored spec that contradict the spec's own schemas.
# Upstream does not validate its examples; these are bugs in the examples,
# not in the schemas (or in spec.py).  Marked strict xfail so that a spec
# update that fixes them makes the suite tell us to drop the entry.
# --------------------------------------------------------------------------

_FILTER_ID_01 = "example filter id '0x01' has a leading zero (uint forbids it)"
_UPPERCASE_HEX = "example block number '0x32026E' uses uppercase hex (uint is lowercase)"
_TX_INFO_OUTDATED = (
    "example transaction predates the schema: no `type`/`blockTimestamp`, "
    "and typed txs have a multi-byte `v` instead of `yParity`"
)
_SHORT_HASH = "example tx hash has 63 hex digits (hash32 needs 64)"
_NO_SIGNATURE = "example pending transactions lack `type`, `r`, `s` (required by TransactionSigned)"

KNOWN_BAD_EXAMPLES: dict[tuple[str, str], str] = {
    # (method, "result" | "params") -> reason
    ("eth_newFilter", "result"): _FILTER_ID_01,
    ("eth_newBlockFilter", "result"): _FILTER_ID_01,
    ("eth_newPendingTransactionFilter", "result"): _FILTER_ID_01,
    ("eth_getFilterChanges", "params"): _FILTER_ID_01,
    ("eth_getFilterLogs", "params"): _FILTER_ID_01,
    ("eth_uninstallFilter", "params"): _FILTER_ID_01,
    ("debug_getRawBlock", "params"): _UPPERCASE_HEX,
    ("debug_getRawHeader", "params"): _UPPERCASE_HEX,
    ("debug_getRawReceipts", "params"): _UPPERCASE_HEX,
    ("eth_getTransactionByHash", "result"): _TX_INFO_OUTDATED,
    ("eth_getTransactionByBlockHashAndIndex", "result"): _TX_INFO_OUTDATED,
    ("eth_getTransactionByBlockNumberAndIndex", "result"): _TX_INFO_OUTDATED,
    ("debug_getBadBlocks", "result"): _TX_INFO_OUTDATED,
    ("eth_sendTransaction", "result"): _SHORT_HASH,
    ("eth_sendRawTransaction", "result"): _SHORT_HASH,
    ("txpool_content", "result"): _NO_SIGNATURE,
    ("txpool_contentFrom", "result"): _NO_SIGNATURE,
    ("eth_feeHistory", "result"): "example uses key `oldestblock` instead of `oldestBlock`",
    ("eth_createAccessList", "params"): (
        "example tx uses the legacy `data` alias; GenericTransaction only has "
        "`input` and forbids additional properties"
    ),
}


def _example_cases(kind: str) -> list[Any]:
    cases = []
    for name in SPEC.method_names():
        method = SPEC.method(name)
        for index, example in enumerate(method.examples):
            slug = re.sub(r"\s+", "-", example.name.strip())
            if sum(e.name == example.name for e in method.examples) > 1:
                slug += f"-{index}"
            reason = KNOWN_BAD_EXAMPLES.get((name, kind))
            marks = [pytest.mark.xfail(reason=reason, raises=AssertionError, strict=True)] if reason else []
            cases.append(pytest.param(name, example, id=f"{name}/{slug}", marks=marks))
    return cases


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def test_loads_all_method_namespaces() -> None:
    names = SPEC.method_names()
    assert names == sorted(names)
    assert len(names) >= 50
    assert {n.split("_", 1)[0] for n in names} == {"eth", "net", "debug", "txpool"}
    for expected in (
        "eth_getBalance",
        "eth_getBlockByNumber",
        "eth_sendRawTransaction",
        "eth_getLogs",
        "debug_getRawBlock",
        "txpool_status",
    ):
        assert expected in SPEC
    # Engine API and testing_* methods are not loaded (see _NON_METHOD_DIRS).
    assert not any(n.startswith(("engine_", "testing_")) for n in names)


def test_unknown_method_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="eth_noSuchMethod"):
        SPEC.method("eth_noSuchMethod")


def test_load_spec_is_cached() -> None:
    assert load_spec() is SPEC
    assert load_spec(SPEC_ROOT) is SPEC


def test_method_shape() -> None:
    method = SPEC.method("eth_getBalance")
    assert method.source == "eth/state.yaml"
    assert [(p.name, p.required) for p in method.params] == [("Address", True), ("Block", False)]
    name, required, schema = method.params[0]
    assert (name, required) == ("Address", True)
    assert schema == {"$ref": f"{COMPONENTS_URI}#/components/schemas/address"}
    assert method.result_schema == {"$ref": f"{COMPONENTS_URI}#/components/schemas/uint"}
    assert len(method.examples) == 1
    assert method.examples[0].params == ("0xfe3b557e8fb62b89f4916b721be55ceb828dbd73", "latest")


def test_error_codes() -> None:
    assert SPEC.method("eth_getBlockByNumber").error_codes == {4444}
    assert SPEC.method("eth_call").error_codes == {3}
    assert SPEC.method("eth_getBalance").error_codes == frozenset()
    # eth_sendRawTransaction pulls in all error groups plus its own codes.
    codes = SPEC.method("eth_sendRawTransaction").error_codes
    for group in (
        "JSONRPCStandardErrors",
        "JSONRPCNonStandardErrors",
        "GasErrors",
        "ExecutionErrors",
        "TxPoolErrors",
    ):
        assert {e["code"] for e in SPEC.error_groups[group]["errors"]} <= codes
    assert {-32700, -32602, -32000, 1, 800, 809, 1000} <= codes


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_all_component_refs_resolve() -> None:
    resolver = SPEC.registry.resolver(COMPONENTS_URI)
    for name, schema in SPEC.schemas.items():
        Draft202012Validator.check_schema(schema)
        for ref in _refs(schema):
            try:
                resolver.lookup(ref)
            except Unresolvable as exc:  # pragma: no cover - failure path
                pytest.fail(f"component {name}: unresolvable {ref}: {exc}")


@pytest.mark.parametrize("method", SPEC.method_names())
def test_method_schemas_resolve(method: str) -> None:
    spec = SPEC.method(method)
    resolver = SPEC.registry.resolver(COMPONENTS_URI)
    for schema in [spec.result_schema, *(p.schema for p in spec.params)]:
        Draft202012Validator.check_schema(schema)
        for ref in _refs(schema):
            assert ref.startswith(COMPONENTS_URI + "#/components/schemas/"), ref
            resolver.lookup(ref)


# --------------------------------------------------------------------------
# Spec examples
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "example"), _example_cases("result"))
def test_example_result_validates(method: str, example: Any) -> None:
    validate_result(method, example.result)


@pytest.mark.parametrize(("method", "example"), _example_cases("params"))
def test_example_params_validate(method: str, example: Any) -> None:
    validate_params(method, list(example.params))


def test_known_bad_examples_exist() -> None:
    for method, kind in KNOWN_BAD_EXAMPLES:
        assert SPEC.method(method).examples, (method, kind)
        assert kind in ("result", "params")


# --------------------------------------------------------------------------
# Realistic objects (what a correct node returns) validate
# --------------------------------------------------------------------------

H = "0x" + "ab" * 32
H2 = "0x" + "cd" * 32
ADDR = "0x" + "12" * 20
ADDR2 = "0x" + "34" * 20
R = "0x84caf09aefbd5e539295acc67217563438a4efb224879b6855f56857fa2037d3"
S = "0x5e863be3829812c81439f0ae9d8ecb832b531d651fb234c848d1bf45e62be8b9"

TX_CONTEXT = {
    "blockHash": H,
    "blockNumber": "0x10",
    "blockTimestamp": "0x6553f100",
    "from": ADDR,
    "hash": H2,
    "transactionIndex": "0x0",
}
TX_COMMON = {"nonce": "0x0", "gas": "0x5208", "value": "0x1", "input": "0x", "r": R, "s": S}
LEGACY_TX = {
    **TX_CONTEXT,
    **TX_COMMON,
    "type": "0x0",
    "to": ADDR2,
    "gasPrice": "0x3b9aca00",
    "chainId": "0x1",
    "v": "0x25",
}
PRE_EIP155_TX = {**TX_CONTEXT, **TX_COMMON, "type": "0x0", "to": None, "gasPrice": "0x1", "v": "0x1b"}
ACCESS_LIST_TX = {
    **TX_CONTEXT,
    **TX_COMMON,
    "type": "0x1",
    "to": ADDR2,
    "gasPrice": "0x1",
    "chainId": "0x1",
    "accessList": [{"address": ADDR2, "storageKeys": [H]}],
    "yParity": "0x1",
    "v": "0x1",
}
DYNAMIC_FEE_TX = {
    **TX_CONTEXT,
    **TX_COMMON,
    "type": "0x2",
    "to": None,
    "gasPrice": "0x7",
    "maxFeePerGas": "0x9",
    "maxPriorityFeePerGas": "0x2",
    "chainId": "0x1",
    "accessList": [],
    "yParity": "0x0",
    "v": "0x0",
}
BLOB_TX = {
    **TX_CONTEXT,
    **TX_COMMON,
    "type": "0x3",
    "to": ADDR2,
    "gasPrice": "0x7",
    "maxFeePerGas": "0x9",
    "maxPriorityFeePerGas": "0x2",
    "maxFeePerBlobGas": "0x1",
    "blobVersionedHashes": ["0x01" + "ee" * 31],
    "chainId": "0x1",
    "accessList": [],
    "yParity": "0x1",
}
SET_CODE_TX = {
    **TX_CONTEXT,
    **TX_COMMON,
    "type": "0x4",
    "to": ADDR2,
    "gasPrice": "0x7",
    "maxFeePerGas": "0x9",
    "maxPriorityFeePerGas": "0x2",
    "chainId": "0x1",
    "accessList": [],
    "yParity": "0x0",
    "authorizationList": [
        {"chainId": "0x1", "nonce": "0x0", "address": ADDR, "yParity": "0x1", "r": R, "s": S}
    ],
}
ALL_TXS = [LEGACY_TX, PRE_EIP155_TX, ACCESS_LIST_TX, DYNAMIC_FEE_TX, BLOB_TX, SET_CODE_TX]

BLOCK = {
    "hash": H,
    "parentHash": H2,
    "sha3Uncles": H,
    "miner": ADDR,
    "stateRoot": H,
    "transactionsRoot": H,
    "receiptsRoot": H,
    "logsBloom": "0x" + "00" * 256,
    "difficulty": "0x0",
    "number": "0x10",
    "gasLimit": "0x1c9c380",
    "gasUsed": "0x5208",
    "timestamp": "0x6553f100",
    "extraData": "0x",
    "mixHash": H,
    "nonce": "0x0000000000000000",
    "baseFeePerGas": "0x7",
    "withdrawalsRoot": H,
    "blobGasUsed": "0x0",
    "excessBlobGas": "0x0",
    "parentBeaconBlockRoot": H,
    "requestsHash": H,
    "size": "0x220",
    "transactions": [H2],
    "uncles": [],
    "withdrawals": [{"index": "0x0", "validatorIndex": "0x1", "address": ADDR, "amount": "0x64"}],
}

LOG = {
    "removed": False,
    "logIndex": "0x0",
    "transactionIndex": "0x0",
    "transactionHash": H2,
    "blockHash": H,
    "blockNumber": "0x10",
    "address": ADDR2,
    "data": "0x",
    "topics": [H],
}

RECEIPT = {
    "type": "0x2",
    "transactionHash": H2,
    "transactionIndex": "0x0",
    "blockHash": H,
    "blockNumber": "0x10",
    "from": ADDR,
    "to": None,
    "cumulativeGasUsed": "0x5208",
    "gasUsed": "0x5208",
    "contractAddress": ADDR2,
    "logs": [LOG],
    "logsBloom": "0x" + "00" * 256,
    "status": "0x1",
    "effectiveGasPrice": "0x7",
}


@pytest.mark.parametrize("tx", ALL_TXS, ids=lambda tx: f"type-{tx['type']}-to-{tx['to'] is not None}")
def test_realistic_transactions_validate(tx: dict[str, Any]) -> None:
    validate_result("eth_getTransactionByHash", tx)
    validate_result("eth_getBlockByNumber", {**BLOCK, "transactions": [tx]})


@pytest.mark.parametrize("transactions", [[], [H2], ALL_TXS], ids=["empty", "hashes", "full"])
def test_realistic_block_validates(transactions: list[Any]) -> None:
    validate_result("eth_getBlockByHash", {**BLOCK, "transactions": transactions})


def test_null_results_validate() -> None:
    for method in ("eth_getBlockByNumber", "eth_getTransactionByHash", "eth_getTransactionReceipt"):
        validate_result(method, None)


def test_realistic_receipt_validates() -> None:
    validate_result("eth_getTransactionReceipt", RECEIPT)
    validate_result("eth_getBlockReceipts", [RECEIPT, {**RECEIPT, "to": ADDR2, "contractAddress": None}])


def test_receipt_status_is_optional_in_the_spec() -> None:
    # Pre-Byzantium receipts carry `root` instead of `status`, so the spec does
    # not require `status`.  Tests that need it must assert it themselves.
    receipt = {k: v for k, v in RECEIPT.items() if k != "status"}
    validate_result("eth_getTransactionReceipt", receipt)


def test_syncing_false_validates() -> None:
    validate_result("eth_syncing", False)


# --------------------------------------------------------------------------
# ONEOF_AS_ANYOF: each entry is needed, and the objects it is about validate
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["eth_getLogs", "eth_getFilterChanges", "eth_getFilterLogs"])
def test_empty_filter_results_validate(method: str) -> None:
    validate_result(method, [])
    validate_result(method, [LOG])


def test_filled_blob_transaction_with_sidecar_validates() -> None:
    tx = {k: v for k, v in BLOB_TX.items() if k not in (*TX_CONTEXT, "r", "s", "yParity", "gasPrice")}
    validate_result("eth_fillTransaction", {"tx": tx})
    validate_result(
        "eth_fillTransaction", {"tx": {**tx, "blobs": ["0x00"], "commitments": ["0x00"], "proofs": ["0x00"]}}
    )


@pytest.mark.parametrize(
    ("schema_name", "instance"),
    [
        ("FilterResults", []),
        (
            "FilledTransaction",
            {
                k: v
                for k, v in {**BLOB_TX, "blobs": [], "commitments": [], "proofs": []}.items()
                if k not in (*TX_CONTEXT, "r", "s", "yParity")
            },
        ),
    ],
)
def test_oneof_as_anyof_entries_are_still_needed(schema_name: str, instance: Any) -> None:
    assert set(ONEOF_AS_ANYOF) == {"FilterResults", "FilledTransaction"}
    # The schema as written in the spec (undo the patch), refs made absolute.
    literal = copy.deepcopy(dict(SPEC.schemas[schema_name]))
    literal["oneOf"] = literal.pop("anyOf")
    errors = list(SPEC.validator(_absolute(literal)).iter_errors(instance))
    assert errors and errors[0].validator == "oneOf", "spec fixed upstream? drop the ONEOF_AS_ANYOF entry"
    assert not list(SPEC.validator(SPEC.schema(schema_name)).iter_errors(instance))


def _absolute(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _absolute(v) for k, v in node.items()}
        if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#"):
            out["$ref"] = COMPONENTS_URI + out["$ref"]
        return out
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


# --------------------------------------------------------------------------
# Broken values fail, with a readable message
# --------------------------------------------------------------------------


def _failure(fn: Any, *args: Any) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args)
    return str(info.value)


def test_block_number_as_int_fails_readably() -> None:
    message = _failure(validate_result, "eth_getBlockByNumber", {**BLOCK, "number": 16})
    assert "eth_getBlockByNumber result" in message
    assert "at $.number: 16 is not of type 'string'" in message
    assert "value: 16 (int)" in message
    assert "Block object › Number › hex encoded unsigned integer" in message


def test_receipt_missing_transaction_hash_fails_readably() -> None:
    receipt = {k: v for k, v in RECEIPT.items() if k != "transactionHash"}
    message = _failure(validate_result, "eth_getTransactionReceipt", receipt)
    assert "eth_getTransactionReceipt result" in message
    assert "'transactionHash' is a required property" in message
    assert "Receipt information" in message


def test_receipt_with_unknown_field_fails() -> None:
    message = _failure(validate_result, "eth_getTransactionReceipt", {**RECEIPT, "statusCode": "0x1"})
    assert "'statusCode' was unexpected" in message


def test_short_address_fails_readably() -> None:
    short = "0x" + "ab" * 19
    message = _failure(validate_params, "eth_getBalance", [short, "latest"])
    assert "eth_getBalance param #0 (Address)" in message
    assert "does not match '^0x[0-9a-fA-F]{40}$'" in message
    assert short in message
    assert "hex encoded address" in message
    message = _failure(validate_result, "eth_getTransactionReceipt", {**RECEIPT, "from": short})
    assert "at $.from:" in message


def test_transaction_with_wrong_fields_lists_alternatives() -> None:
    tx = {k: v for k, v in DYNAMIC_FEE_TX.items() if k != "yParity"}
    message = _failure(validate_result, "eth_getBlockByNumber", {**BLOCK, "transactions": [tx]})
    assert "at $.transactions[0]: matches none of the 5 alternatives (oneOf)" in message
    assert "[2] Signed 1559 Transaction: 'yParity' is a required property" in message
    assert "[0] Signed 7702 Transaction:" in message


def test_long_values_are_truncated() -> None:
    message = _failure(validate_result, "eth_getBlockByNumber", {**BLOCK, "logsBloom": "0x" + "0" * 600})
    value_line = next(line for line in message.splitlines() if line.strip().startswith("value:"))
    assert len(value_line) < 160 and "…" in value_line


def test_trailing_newline_is_rejected() -> None:
    # Python's `$` matches before a final newline; JSON Schema (ECMA-262) does not.
    _failure(validate_result, "eth_blockNumber", "0x1\n")
    _failure(validate_params, "eth_getBalance", [ADDR + "\n"])


def test_uint_rules() -> None:
    validate_result("eth_blockNumber", "0x0")
    validate_result("eth_blockNumber", "0x1a")
    for bad in ("0x", "0x01", "0x1A", "1", "0x-1", 1):
        _failure(validate_result, "eth_blockNumber", bad)


# --------------------------------------------------------------------------
# validate_params arity
# --------------------------------------------------------------------------


def test_params_arity() -> None:
    validate_params("eth_getBalance", [ADDR])  # optional block omitted
    validate_params("eth_blockNumber", [])
    validate_params("eth_blockNumber", None)
    assert "missing required param #0 ('Address')" in _failure(validate_params, "eth_getBalance", [])
    assert "got 3 params" in _failure(validate_params, "eth_getBalance", [ADDR, "latest", 1])
    assert "expected a positional list" in _failure(validate_params, "eth_getBalance", {"Address": ADDR})
    # An optional param that is sent must match its schema; null is not "omitted".
    assert "param #1 (Block)" in _failure(validate_params, "eth_getBalance", [ADDR, None])
