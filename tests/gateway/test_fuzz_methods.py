"""Every served method, fed plausible and implausible parameters, never fails inside.

For each method of the table, hypothesis draws parameter lists from Ethereum-shaped
values (quantities, addresses, hashes, block tags, call objects, filters) mixed with
arbitrary JSON. Whatever comes in, the answer is a result or a JSON-RPC error the caller
caused; -32603 (an internal error) is a bug.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.node import Node
from gateway.rpc import METHODS
from tests.gateway.inprocess import ALICE, BOB, make_node, post, request

INTERNAL_ERROR = -32603


def _hex(max_bytes: int) -> st.SearchStrategy[str]:
    return st.binary(max_size=max_bytes).map(lambda raw: "0x" + raw.hex())


_quantities = st.one_of(
    st.integers(0, 2**64).map(hex),
    st.integers(0, 2**300).map(hex),
    st.sampled_from(["0x", "0x0", "0x00", "0x-1", "1", "-0x1", "0xg"]),
)
_addresses = st.sampled_from([ALICE.address, BOB.address, "0x" + "00" * 20, "0x" + "ff" * 20]) | _hex(21)
_hashes = _hex(33) | st.just("0x" + "ab" * 32)
_tags = st.sampled_from(["latest", "earliest", "pending", "safe", "finalized", "Latest", ""])
_blocks = (
    _tags
    | _quantities
    | st.fixed_dictionaries({"blockHash": _hashes})
    | st.fixed_dictionaries({"blockNumber": _quantities})
)
_call_objects = st.fixed_dictionaries(
    {},
    optional={
        "from": _addresses,
        "to": _addresses | st.none(),
        "gas": _quantities,
        "gasPrice": _quantities,
        "maxFeePerGas": _quantities,
        "maxPriorityFeePerGas": _quantities,
        "value": _quantities,
        "data": _hex(64),
        "input": _hex(64),
        "nonce": _quantities,
        "accessList": st.lists(
            st.fixed_dictionaries({"address": _addresses, "storageKeys": st.lists(_hashes, max_size=2)}),
            max_size=2,
        ),
    },
)
_filters = st.fixed_dictionaries(
    {},
    optional={
        "fromBlock": _blocks,
        "toBlock": _blocks,
        "address": _addresses | st.lists(_addresses, max_size=3),
        "topics": st.lists(st.none() | _hashes | st.lists(_hashes, max_size=2), max_size=5),
        "blockHash": _hashes,
    },
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_values = st.one_of(_quantities, _addresses, _hashes, _blocks, _call_objects, _filters, st.booleans(), _json)
_params = st.lists(_values, max_size=4)


@pytest.fixture(scope="module")
def dev_node() -> Iterator[Node]:
    node = make_node(dev_mode=True)
    yield node
    node.engine.dispose()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_no_parameters_make_a_method_fail_inside(dev_node: Node, method: str) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(params=_params)
    def check(params: list[Any]) -> None:
        answer = post(dev_node, request(method, params))
        error = answer.get("error")
        assert error is None or error["code"] != INTERNAL_ERROR, (method, params, error)

    check()
