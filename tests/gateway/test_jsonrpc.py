"""JSON-RPC 2.0 dispatch (`gateway.jsonrpc.handle_body`) on an in-process node.

No server, no event loop: bodies go straight to `handle_body`, and blocks are sealed by
calling the ordering service's `seal()`.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gateway.jsonrpc as jsonrpc
from gateway.jsonrpc import Limits, handle_body
from gateway.node import Node
from gateway.rpc import METHODS, Method
from tests.evm_runtime.chainkit import ETHER, GWEI, recipient, sign
from tests.gateway.inprocess import ALICE, BOB, POOR, body, call, error_of, post, request, strict_loads


def _is_response(value: Any, *, strict_id: bool = True) -> bool:
    if not isinstance(value, dict) or value.get("jsonrpc") != "2.0" or "id" not in value:
        return False
    valid_id = isinstance(value["id"], (str, int, float, type(None))) and not isinstance(value["id"], bool)
    if strict_id and not valid_id:
        return False
    if ("result" in value) == ("error" in value):
        return False
    if "error" in value:
        error = value["error"]
        return (
            isinstance(error, dict)
            and isinstance(error.get("code"), int)
            and not isinstance(error.get("code"), bool)
            and isinstance(error.get("message"), str)
            and set(error) <= {"code", "message", "data"}
        )
    return set(value) == {"jsonrpc", "id", "result"}


# -- envelopes ------------------------------------------------------------------------------


def test_a_request_gets_its_result(node: Node) -> None:
    assert post(node, request("eth_chainId")) == {"jsonrpc": "2.0", "id": 1, "result": "0x539"}


@pytest.mark.parametrize("id", [0, 7, -1, "abc", "", 1.5, None, 2**80])
def test_the_id_is_echoed(node: Node, id: Any) -> None:
    assert post(node, request("eth_chainId", id=id))["id"] == id


@pytest.mark.parametrize("raw", [b"{", b"", b"[1,", b"\xff\xfe", b"{'a': 1}", b"nul", b'{"a":1}x'], ids=repr)
def test_a_body_that_is_not_json_is_a_parse_error(node: Node, raw: bytes) -> None:
    assert post(node, raw) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "parse error: the body is not valid JSON"},
    }


def test_an_empty_batch_is_an_invalid_request(node: Node) -> None:
    answer = post(node, [])
    assert answer["id"] is None and answer["error"]["code"] == -32600
    assert "empty batch" in answer["error"]["message"]


@pytest.mark.parametrize("payload", ["text", 5, None, True, 1.5])
def test_a_body_that_is_not_an_object_is_an_invalid_request(node: Node, payload: Any) -> None:
    answer = post(node, payload)
    assert answer["id"] is None and answer["error"]["code"] == -32600


def test_a_mixed_batch_is_answered_in_order(node: Node) -> None:
    answers = post(
        node,
        [
            request("eth_chainId", id=1),
            {"foo": "bar"},
            {"jsonrpc": "2.0", "method": "eth_chainId"},  # a notification: no answer
            request("no_such_method", id="x"),
            5,
            request("eth_getBalance", [], id=2),
            request("net_version", id=3),
            {"jsonrpc": "1.0", "id": 4, "method": "eth_chainId"},
        ],
    )
    assert [a["id"] for a in answers] == [1, None, "x", None, 2, 3, 4]
    assert answers[0]["result"] == "0x539"
    assert [a.get("error", {}).get("code") for a in answers] == [
        None,
        -32600,
        -32601,
        -32600,
        -32602,
        None,
        -32600,
    ]
    assert answers[5]["result"] == "1337"
    assert all(_is_response(a) for a in answers)


def test_a_notification_gets_no_answer(node: Node) -> None:
    assert handle_body(node, body({"jsonrpc": "2.0", "method": "eth_chainId"})) is None
    assert handle_body(node, body({"jsonrpc": "2.0", "method": "no_such_method"})) is None
    assert handle_body(node, body({"jsonrpc": "2.0", "method": "eth_getBalance", "params": ["0x12"]})) is None


def test_a_batch_of_notifications_gets_no_answer(node: Node) -> None:
    batch = [{"jsonrpc": "2.0", "method": "eth_chainId"}, {"jsonrpc": "2.0", "method": "nope", "params": [1]}]
    assert handle_body(node, body(batch)) is None


def test_a_notification_is_still_executed(node: Node) -> None:
    raw = sign(ALICE, nonce=0, value=1)
    notification = {"jsonrpc": "2.0", "method": "eth_sendRawTransaction", "params": ["0x" + raw.hex()]}
    assert handle_body(node, body(notification)) is None
    assert len(node.pool) == 1


@pytest.mark.parametrize("version", ["1.0", 2.0, None, "2", "2.0 "])
def test_the_version_must_be_2_0(node: Node, version: Any) -> None:
    answer = post(node, {"jsonrpc": version, "id": 9, "method": "eth_chainId"})
    assert answer["id"] == 9
    assert answer["error"]["code"] == -32600
    assert '"jsonrpc"' in answer["error"]["message"]


def test_a_missing_version_is_an_invalid_request(node: Node) -> None:
    assert error_of(node, {"id": 9, "method": "eth_chainId"})["code"] == -32600


@pytest.mark.parametrize("method", [5, None, ["eth_chainId"], {"name": "eth_chainId"}, True])
def test_the_method_must_be_a_string(node: Node, method: Any) -> None:
    error = error_of(node, {"jsonrpc": "2.0", "id": 1, "method": method})
    assert error["code"] == -32600
    assert "method" in error["message"]


def test_a_missing_method_is_an_invalid_request(node: Node) -> None:
    assert error_of(node, {"jsonrpc": "2.0", "id": 1})["code"] == -32600


@pytest.mark.parametrize("id", [[1], {"a": 1}, True, False])
def test_an_id_that_is_not_a_string_or_number_is_refused(node: Node, id: Any) -> None:
    answer = post(node, request("eth_chainId", id=id))
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600


def test_an_unknown_method(node: Node) -> None:
    error = error_of(node, request("eth_mine"))
    assert error["code"] == -32601
    assert "eth_mine" in error["message"]
    long_name = "x" * 10_000
    assert len(error_of(node, request(long_name))["message"]) < 300


# -- parameters -------------------------------------------------------------------------------


def test_too_many_params(node: Node) -> None:
    error = error_of(node, request("eth_getBalance", [recipient(1), "latest", True]))
    assert error == {"code": -32602, "message": "too many arguments, want at most 2, got 3"}
    assert error_of(node, request("eth_chainId", [1]))["code"] == -32602


def test_a_missing_required_param_names_its_position_and_name(node: Node) -> None:
    error = error_of(node, request("eth_getBalance", []))
    assert error == {"code": -32602, "message": "missing value for required argument 0 (address)"}
    error = error_of(node, request("eth_getBlockByHash", [None, True]))
    assert error["message"] == "missing value for required argument 0 (hash)"


def test_a_param_of_the_wrong_type_names_its_position_and_name(node: Node) -> None:
    error = error_of(node, request("eth_getBalance", [recipient(1), "newest"]))
    assert error["code"] == -32602
    assert error["message"].startswith("invalid argument 1 (block): ")
    error = error_of(node, request("eth_getBalance", [5]))
    assert error["message"].startswith("invalid argument 0 (address): ")
    error = error_of(node, request("eth_getBlockByNumber", ["latest", "yes"]))
    assert error["message"].startswith("invalid argument 1 (full): ")


def test_optional_params_take_their_defaults(node: Node) -> None:
    assert call(node, "eth_getBalance", recipient(1)) == "0x0"
    assert call(node, "eth_getBalance", recipient(1), None) == "0x0"
    assert call(node, "eth_getBlockByNumber", "0x0")["number"] == "0x0"


def test_params_by_name(node: Node) -> None:
    alice = ALICE.address
    by_name = post(node, request("eth_getBalance", {"address": alice, "block": "latest"}))
    by_position = post(node, request("eth_getBalance", [alice, "latest"]))
    assert by_name == by_position
    assert by_name["result"] == hex(100 * ETHER)
    assert post(node, request("eth_getBalance", {"address": alice}))["result"] == hex(100 * ETHER)


def test_params_by_name_refuse_unknown_names(node: Node) -> None:
    error = error_of(node, request("eth_getBalance", {"address": ALICE.address, "blok": "latest"}))
    assert error["code"] == -32602
    assert "blok" in error["message"]


def test_params_by_name_still_require_the_required_ones(node: Node) -> None:
    error = error_of(node, request("eth_getBalance", {"block": "latest"}))
    assert error["message"] == "missing value for required argument 0 (address)"


@pytest.mark.parametrize("params", ["0x1", 5, True])
def test_params_must_be_structured(node: Node, params: Any) -> None:
    assert error_of(node, request("eth_getBalance", params))["code"] == -32600


def test_null_params_are_no_params(node: Node) -> None:
    assert (
        post(node, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": None})["result"] == "0x539"
    )


def test_a_batch_over_the_limit(node: Node) -> None:
    answer = post(node, [request("eth_chainId", id=i) for i in range(4)], Limits(max_batch=3))
    assert answer["id"] is None
    assert answer["error"]["code"] == -32005
    assert "at most 3" in answer["error"]["message"]
    assert len(post(node, [request("eth_chainId", id=i) for i in range(3)], Limits(max_batch=3))) == 3


# -- internal errors ----------------------------------------------------------------------------


def test_an_internal_error_never_leaks_a_traceback(
    node: Node, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    def explode(node: Node) -> None:
        raise RuntimeError("secret detail in /srv/conclave/keys.py line 12")

    monkeypatch.setitem(METHODS, "test_explode", Method("test_explode", explode, ()))
    answer = post(node, request("test_explode", id=5))
    assert answer["id"] == 5
    assert answer["error"]["code"] == -32603
    message = answer["error"]["message"]
    assert "secret" not in message and "Traceback" not in message and ".py" not in message
    assert "data" not in answer["error"]
    assert any("test_explode" in record.getMessage() for record in caplog.records)  # the log keeps it
    # One failing request does not spoil its batch.
    answers = post(node, [request("test_explode", id=1), request("eth_chainId", id=2)])
    assert answers[0]["error"]["code"] == -32603 and answers[1]["result"] == "0x539"


# -- transactions and blocks --------------------------------------------------------------------


def test_a_transaction_is_admitted_then_sealed(node: Node) -> None:
    raw = sign(ALICE, nonce=0, value=12_345, to=recipient(9))
    tx_hash = call(node, "eth_sendRawTransaction", "0x" + raw.hex())
    pending = call(node, "eth_getTransactionByHash", tx_hash)
    assert pending["blockNumber"] is None and pending["from"] == ALICE.address
    assert call(node, "eth_getTransactionCount", ALICE.address, "pending") == "0x1"
    assert call(node, "eth_getTransactionCount", ALICE.address, "latest") == "0x0"
    assert call(node, "eth_getTransactionReceipt", tx_hash) is None

    block = node.ordering.seal()
    assert block is not None and block.number == 1
    assert node.ordering.seal() is None  # nothing left waiting

    assert call(node, "eth_blockNumber") == "0x1"
    receipt = call(node, "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["blockNumber"] == "0x1" and receipt["gasUsed"] == "0x5208"
    assert call(node, "eth_getBalance", recipient(9)) == hex(12_345)
    assert call(node, "eth_getBalance", recipient(9), "0x0") == "0x0"
    assert call(node, "eth_getTransactionCount", ALICE.address, "latest") == "0x1"
    assert call(node, "eth_getBlockByNumber", "latest", False)["transactions"] == [tx_hash]
    assert len(node.pool) == 0


def test_an_empty_block_can_be_sealed_on_demand(node: Node) -> None:
    block = node.ordering.seal(allow_empty=True)
    assert block is not None and block.number == 1
    assert call(node, "eth_getBlockTransactionCountByNumber", "0x1") == "0x0"


@pytest.mark.parametrize(
    "make_raw,code",
    [
        (lambda: sign(ALICE, nonce=0, gas=20_000), 800),
        (lambda: sign(ALICE, nonce=0, gas=40_000_000), 803),
        (lambda: sign(ALICE, nonce=0, maxFeePerGas=1, maxPriorityFeePerGas=1), 806),
        (lambda: sign(ALICE, nonce=0, value=10**30), 809),
        (lambda: sign(ALICE, nonce=0, chainId=1), -32000),
        (lambda: sign(ALICE, nonce=0, maxFeePerGas=1 * GWEI, maxPriorityFeePerGas=2 * GWEI), 804),
        (lambda: b"\x03" + b"\xc0", -32003),
        (lambda: b"\xc0", -32000),
    ],
)
def test_refused_transactions_get_their_error_codes(node: Node, make_raw, code: int) -> None:
    error = error_of(node, request("eth_sendRawTransaction", ["0x" + make_raw().hex()]))
    assert error["code"] == code
    assert len(node.pool) == 0


def test_duplicates_and_used_nonces_are_refused(node: Node) -> None:
    raw = "0x" + sign(ALICE, nonce=0).hex()
    call(node, "eth_sendRawTransaction", raw)
    assert error_of(node, request("eth_sendRawTransaction", [raw]))["code"] == 1000
    node.ordering.seal()
    error = error_of(node, request("eth_sendRawTransaction", [raw]))
    assert error["code"] == 1
    assert "nonce too low" in error["message"]


def test_a_reverted_call_has_code_3_and_the_revert_data(node: Node) -> None:
    # Init code reverting with the 4 bytes "boom": PUSH4 "boom" PUSH1 0 MSTORE PUSH1 4 PUSH1 28 REVERT
    init = "0x63" + b"boom".hex() + "600052" + "6004601cfd"
    error = error_of(node, request("eth_call", [{"from": ALICE.address, "data": init}]))
    assert error == {"code": 3, "message": "execution reverted", "data": "0x" + b"boom".hex()}


def test_a_transaction_the_sender_could_not_pay_after_its_waiting_ones_is_refused(node: Node) -> None:
    first = sign(POOR, nonce=0, value=1, maxFeePerGas=2 * GWEI, maxPriorityFeePerGas=1)
    second = sign(POOR, nonce=1, value=0, maxFeePerGas=2 * GWEI, maxPriorityFeePerGas=1)
    call(node, "eth_sendRawTransaction", "0x" + first.hex())
    refused = error_of(node, request("eth_sendRawTransaction", ["0x" + second.hex()]))
    assert refused["code"] == 809 and "already committed by waiting transactions" in refused["message"]
    block = node.ordering.seal()
    assert block is not None and len(block.transactions) == 1
    assert len(node.pool) == 0


def test_the_ordering_service_needs_no_running_event_loop(node: Node) -> None:
    """Driven by hand (no loop): no round timers, and one validator decides at once."""
    node.ordering.notify()
    assert node.ordering.seal(allow_empty=True) is not None


# -- answers that must not be internal errors ---------------------------------------------------


@pytest.mark.parametrize(
    "method,params",
    [
        ("eth_getBlockByNumber", ["0x8000000000000000", False]),
        ("eth_getBlockTransactionCountByNumber", ["0xffffffffffffffff"]),
        ("eth_getTransactionByBlockNumberAndIndex", ["0x" + "f" * 64, "0x0"]),
        ("eth_getBalance", [ALICE.address, "0xffffffffffffffff"]),
        ("eth_call", [{"to": ALICE.address}, "0x8000000000000000"]),
        ("eth_feeHistory", ["0x1", "0xffffffffffffffff"]),
    ],
)
def test_huge_block_numbers_are_unknown_blocks(shared_node: Node, method: str, params: list) -> None:
    answer = post(shared_node, request(method, params))
    assert answer.get("result") is None
    if "error" in answer:
        assert answer["error"]["code"] in (-32001, -32602)


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_an_out_of_range_call_nonce_is_not_an_internal_error(shared_node: Node, method: str) -> None:
    error = error_of(shared_node, request(method, [{"to": BOB.address, "nonce": "0x" + "f" * 64}]))
    assert error["code"] != -32603


def test_a_raw_transaction_of_type_zero_byte_is_not_an_internal_error(shared_node: Node) -> None:
    error = error_of(shared_node, request("eth_sendRawTransaction", ["0x00c0"]))
    assert error["code"] != -32603


@pytest.mark.parametrize("id_text", ["1e400", "-1e400", "NaN", "Infinity"])
def test_the_answer_is_always_json(node: Node, id_text: str) -> None:
    raw = b'{"jsonrpc":"2.0","id":' + id_text.encode() + b',"method":"eth_chainId"}'
    answer = handle_body(node, raw)
    assert answer is not None
    assert _is_response(strict_loads(answer))


DANGEROUS_DEPTH = 60_000
"""Nesting at which CPython's recursive JSON scanner overflows an 8 MiB C stack (measured)."""


def test_deep_nesting_cannot_overflow_the_stack(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked without risking the crash: the parse is intercepted when it would be unsafe."""
    depth = 99_000
    unsafe: list[int] = []
    real_loads = json.loads

    def guarded_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        nesting = len(text) - len(text.lstrip(b"[" if isinstance(text, bytes) else "["))
        if nesting >= DANGEROUS_DEPTH and sys.getrecursionlimit() >= nesting:
            unsafe.append(sys.getrecursionlimit())
            raise RecursionError("intercepted: this parse would overflow the C stack")
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(jsonrpc.json, "loads", guarded_loads)
    answer = handle_body(node, b"[" * depth)
    assert answer is not None and strict_loads(answer)["error"]["code"] in (-32700, -32600)
    assert unsafe == [], f"json.loads ran {depth} levels deep with the recursion limit at {unsafe[0]}"


def test_moderate_nesting_is_answered(node: Node) -> None:
    answer = post(node, b"[" * 500 + b"]" * 500)
    assert answer == [{"jsonrpc": "2.0", "id": None, "error": answer[0]["error"]}]
    assert answer[0]["error"]["code"] == -32600


# -- property: any JSON gets a JSON-RPC answer --------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["latest", "0x0", "0x1", "0x" + "00" * 20, "0x" + "00" * 32, "2.0", "0x"])
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
_method_names = st.sampled_from(sorted(METHODS)) | st.text(max_size=20)
_requests = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0") | _json_scalars, "method": _method_names | _json_scalars},
    optional={
        "id": st.none() | st.integers(-(2**70), 2**70) | st.text(max_size=8) | _json_values,
        "params": st.lists(_json_values, max_size=4)
        | st.dictionaries(st.text(max_size=8), _json_values, max_size=3)
        | _json_values,
    },
)
_bodies = _json_values | _requests | st.lists(_requests | _json_values, min_size=0, max_size=6)


def _is_notification(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "id" not in value
        and value.get("jsonrpc") == "2.0"
        and isinstance(value.get("method"), str)
    )


@pytest.mark.parametrize("id", [[], [1], {"a": 1}, True])
def test_an_invalid_id_is_never_echoed(node: Node, id: Any) -> None:
    answer = post(node, {"jsonrpc": "1.0", "id": id, "method": "eth_chainId"})
    assert _is_response(answer)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_bodies)
def test_any_json_gets_a_valid_answer(shared_node: Node, payload: Any) -> None:
    """Every answer is JSON and JSON-RPC shaped; one per non-notification, in order.

    The type of an echoed id is not checked here: test_an_invalid_id_is_never_echoed does.
    """
    answer = handle_body(shared_node, json.dumps(payload).encode())
    if answer is None:
        if isinstance(payload, list):
            assert payload and all(_is_notification(item) for item in payload)
        else:
            assert _is_notification(payload)
        return
    decoded = strict_loads(answer)
    if isinstance(payload, list) and payload:
        assert isinstance(decoded, list)
        expected = [item for item in payload if not _is_notification(item)]
        assert len(decoded) == len(expected)
        assert all(_is_response(item, strict_id=False) for item in decoded)
        for item, sent in zip(decoded, expected, strict=True):
            if isinstance(sent, dict) and "id" in sent and _is_response(item):
                assert item["id"] in (sent["id"], None)
    else:
        assert _is_response(decoded, strict_id=False)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_get_a_valid_answer_or_none(shared_node: Node, raw: bytes) -> None:
    answer = handle_body(shared_node, raw)
    if answer is not None:
        decoded = strict_loads(answer)
        items = decoded if isinstance(decoded, list) else [decoded]
        assert all(_is_response(item, strict_id=False) for item in items)


def test_a_number_too_long_to_convert_is_a_parse_error(node: Node) -> None:
    raw = b'{"jsonrpc":"2.0","id":' + b"9" * 5_000 + b',"method":"eth_chainId"}'
    answer = post(node, raw)
    assert answer["error"]["code"] in (-32700, -32600)


def test_hex_in_messages_is_clipped(node: Node) -> None:
    error = error_of(node, request("eth_getBalance", ["0x" + "zz" * 10_000]))
    assert len(error["message"]) < 300
    assert re.match(r"invalid argument 0 \(address\)", error["message"])
