"""Parsers of JSON-RPC parameters (`gateway.params`)."""

from __future__ import annotations

import pytest

from gateway import params as p
from gateway.params import BlockRef, CallObject, LogFilter

HASH = "0x" + "ab" * 32
ADDR = "0x" + "12" * 20
ADDR2 = "0x" + "34" * 20
TOPIC_A = "0x" + "0a" * 32
TOPIC_B = "0x" + "0b" * 32

# -- block_ref ------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["latest", "earliest", "pending", "safe", "finalized"])
def test_block_tags(tag: str) -> None:
    assert p.block_ref(tag) == BlockRef(tag=tag)
    assert p.block_number_or_tag(tag) == BlockRef(tag=tag)


@pytest.mark.parametrize(
    "text,number", [("0x0", 0), ("0x10", 16), ("0xFF", 255), ("0x" + "f" * 16, 2**64 - 1)]
)
def test_block_numbers(text: str, number: int) -> None:
    assert p.block_ref(text) == BlockRef(number=number)


@pytest.mark.parametrize("value", ["Latest", "lat", "10", "", "0x01", "0x", "0xg", "0X1", " latest"])
def test_invalid_block_strings(value: str) -> None:
    with pytest.raises(ValueError):
        p.block_ref(value)


def test_an_unknown_tag_lists_the_tags() -> None:
    with pytest.raises(
        ValueError, match="expected a number or one of earliest, finalized, latest, pending, safe"
    ):
        p.block_ref("newest")


@pytest.mark.parametrize("value", [None, 5, 1.5, True, ["latest"]])
def test_block_refs_of_other_types(value: object) -> None:
    with pytest.raises(ValueError, match="expected a block tag, number or object"):
        p.block_ref(value)


def test_eip1898_by_hash() -> None:
    assert p.block_ref({"blockHash": HASH}) == BlockRef(hash=bytes.fromhex("ab" * 32))
    assert p.block_ref({"blockHash": HASH, "requireCanonical": True}) == BlockRef(
        hash=bytes.fromhex("ab" * 32), require_canonical=True
    )
    assert p.block_ref({"blockHash": HASH, "requireCanonical": False}).require_canonical is False


def test_eip1898_by_number() -> None:
    assert p.block_ref({"blockNumber": "0x2a"}) == BlockRef(number=42)
    assert p.block_ref({"blockNumber": "latest"}) == BlockRef(tag="latest")


@pytest.mark.parametrize(
    "value,message",
    [
        ({"blockHash": HASH, "blockNumber": "0x1"}, "either blockHash or blockNumber, not both"),
        ({}, "needs blockHash or blockNumber"),
        ({"requireCanonical": True}, "needs blockHash or blockNumber"),
        ({"blockHash": HASH, "requireCanonical": "yes"}, "expected true or false"),
        ({"blockHash": HASH, "requireCanonical": 1}, "expected true or false"),
        ({"blockHash": "0xab"}, "expected 32 bytes, got 1"),
        ({"blockHash": "ab" * 32}, "invalid hex data"),
        ({"blockNumber": "0x01"}, "invalid hex quantity"),
        ({"blockNumber": 5}, "expected a block tag"),
    ],
)
def test_invalid_eip1898_objects(value: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        p.block_ref(value)


@pytest.mark.parametrize("inner", [{"blockNumber": "0x1"}, {"blockHash": HASH}])
def test_eip1898_block_number_must_be_a_number_or_tag(inner: dict) -> None:
    with pytest.raises(ValueError):
        p.block_ref({"blockNumber": inner})


def test_block_number_or_tag_refuses_objects() -> None:
    with pytest.raises(ValueError, match="not an object"):
        p.block_number_or_tag({"blockNumber": "0x1"})


# -- call_object ----------------------------------------------------------------------------


def test_a_full_call_object() -> None:
    parsed = p.call_object(
        {
            "from": ADDR,
            "to": ADDR2,
            "gas": "0x5208",
            "maxFeePerGas": "0x10",
            "maxPriorityFeePerGas": "0x1",
            "value": "0x3",
            "input": "0xabcd",
            "nonce": "0x7",
            "accessList": [{"address": ADDR2, "storageKeys": ["0x" + "00" * 31 + "05"]}],
        }
    )
    assert parsed == CallObject(
        sender=bytes.fromhex("12" * 20),
        to=bytes.fromhex("34" * 20),
        gas=21_000,
        max_fee_per_gas=16,
        max_priority_fee_per_gas=1,
        value=3,
        data=b"\xab\xcd",
        nonce=7,
        access_list=((bytes.fromhex("34" * 20), (5,)),),
    )


def test_an_empty_call_object_has_defaults() -> None:
    assert p.call_object({}) == CallObject()
    assert p.call_object({"to": None, "value": None, "data": None}) == CallObject()


def test_data_is_accepted_as_the_legacy_name_of_input() -> None:
    assert p.call_object({"data": "0x01"}).data == b"\x01"
    assert p.call_object({"input": "0x01"}).data == b"\x01"
    assert p.call_object({"input": "0x01", "data": "0x01"}).data == b"\x01"


def test_input_and_data_must_agree() -> None:
    with pytest.raises(ValueError, match="both input and data are set and differ"):
        p.call_object({"input": "0x01", "data": "0x02"})


@pytest.mark.parametrize("fee", ["maxFeePerGas", "maxPriorityFeePerGas"])
def test_gas_price_cannot_go_with_1559_fees(fee: str) -> None:
    with pytest.raises(ValueError, match="either gasPrice or maxFeePerGas/maxPriorityFeePerGas"):
        p.call_object({"gasPrice": "0x1", fee: "0x1"})
    assert p.call_object({"gasPrice": None, fee: "0x1"}).gas_price is None


def test_gas_price_alone() -> None:
    assert p.call_object({"gasPrice": "0x9"}).gas_price == 9


@pytest.mark.parametrize(
    "value,message",
    [
        ([], "expected a transaction object, got list"),
        ("0x", "expected a transaction object, got str"),
        ({"to": "0x12"}, "expected 20 bytes"),
        ({"from": 5}, "got int"),
        ({"gas": "0x01"}, "invalid hex quantity"),
        ({"value": 1}, "got int"),
        ({"input": "0x1"}, "invalid hex data"),
        ({"accessList": {"address": ADDR}}, "accessList must be an array"),
        ({"accessList": [{"storageKeys": []}]}, "needs an address"),
        ({"accessList": [{"address": ADDR, "storageKeys": "0x00"}]}, "storageKeys must be an array"),
        ({"accessList": [{"address": ADDR, "storageKeys": ["0x01"]}]}, "expected 32 bytes"),
    ],
)
def test_invalid_call_objects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        p.call_object(value)


# -- log_filter -----------------------------------------------------------------------------


def test_an_empty_filter() -> None:
    assert p.log_filter({}) == LogFilter(
        from_block=None, to_block=None, block_hash=None, addresses=(), topics=()
    )


def test_a_single_address_or_a_list() -> None:
    one = bytes.fromhex("12" * 20)
    two = bytes.fromhex("34" * 20)
    assert p.log_filter({"address": ADDR}).addresses == (one,)
    assert p.log_filter({"address": [ADDR, ADDR2]}).addresses == (one, two)
    assert p.log_filter({"address": []}).addresses == ()
    assert p.log_filter({"address": None}).addresses == ()


def test_too_many_addresses() -> None:
    with pytest.raises(ValueError, match="too many items"):
        p.log_filter({"address": [ADDR] * (p.MAX_FILTER_ADDRESSES + 1)})
    assert len(p.log_filter({"address": [ADDR] * p.MAX_FILTER_ADDRESSES}).addresses) == p.MAX_FILTER_ADDRESSES


@pytest.mark.parametrize("value", ["0x12", 5, [ADDR, "0x12"], {"address": ADDR}])
def test_invalid_addresses(value: object) -> None:
    with pytest.raises(ValueError):
        p.log_filter({"address": value})


def test_topics_with_wildcards_and_alternatives() -> None:
    a, b = bytes.fromhex("0a" * 32), bytes.fromhex("0b" * 32)
    parsed = p.log_filter({"topics": [TOPIC_A, None, [TOPIC_A, TOPIC_B], []]})
    assert parsed.topics == ((a,), None, (a, b), None)
    assert p.log_filter({"topics": None}).topics == ()
    assert p.log_filter({"topics": [None, None, None, TOPIC_B]}).topics == (None, None, None, (b,))


def test_more_than_four_topics_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 4 positions"):
        p.log_filter({"topics": [None] * 5})


@pytest.mark.parametrize("topics", [TOPIC_A, {"0": TOPIC_A}, [["0x0a"]], ["0x0a"], [[TOPIC_A, 5]], [5]])
def test_invalid_topics(topics: object) -> None:
    with pytest.raises(ValueError):
        p.log_filter({"topics": topics})


def test_too_many_alternatives_for_one_topic() -> None:
    with pytest.raises(ValueError, match="too many alternatives"):
        p.log_filter({"topics": [[TOPIC_A] * (p.MAX_TOPIC_ALTERNATIVES + 1)]})


def test_block_range() -> None:
    parsed = p.log_filter({"fromBlock": "0x1", "toBlock": "latest"})
    assert parsed.from_block == BlockRef(number=1)
    assert parsed.to_block == BlockRef(tag="latest")
    with pytest.raises(ValueError, match="not an object"):
        p.log_filter({"fromBlock": {"blockNumber": "0x1"}})


@pytest.mark.parametrize("other", ["fromBlock", "toBlock"])
def test_block_hash_cannot_go_with_a_range(other: str) -> None:
    with pytest.raises(ValueError, match="blockHash cannot be combined with fromBlock or toBlock"):
        p.log_filter({"blockHash": HASH, other: "0x1"})
    assert p.log_filter({"blockHash": HASH, other: None}).block_hash == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("value", [[], "x", None, 3])
def test_a_filter_must_be_an_object(value: object) -> None:
    with pytest.raises(ValueError, match="expected a filter object"):
        p.log_filter(value)


# -- small parsers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,slot", [("0x0", 0), ("0x00", 0), ("0x" + "00" * 31 + "01", 1), ("0x" + "ff" * 32, 2**256 - 1)]
)
def test_storage_slots_allow_leading_zeros(value: str, slot: int) -> None:
    assert p.storage_slot(value) == slot


@pytest.mark.parametrize("value", ["0x", "0x" + "0" * 65, "1", 1, None, "0xg"])
def test_invalid_storage_slots(value: object) -> None:
    with pytest.raises(ValueError):
        p.storage_slot(value)


@pytest.mark.parametrize("value", ["0x1_0", "0x_1", "0x1 ", "0x\u0661"])
def test_storage_slots_are_hex_digits_only(value: str) -> None:
    with pytest.raises(ValueError):
        p.storage_slot(value)


@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_booleans_are_json_booleans(value: object) -> None:
    with pytest.raises(ValueError, match="expected true or false"):
        p.boolean(value)
    assert p.boolean(True) is True and p.boolean(False) is False


def test_list_of_and_optional() -> None:
    parse = p.list_of(p.quantity, max_items=2)
    assert parse(["0x1", "0x2"]) == [1, 2]
    with pytest.raises(ValueError, match="too many items: 3, at most 2"):
        parse(["0x1"] * 3)
    with pytest.raises(ValueError, match="expected an array, got str"):
        parse("0x1")
    assert p.optional(p.quantity)(None) is None
    assert p.optional(p.quantity)("0x3") == 3
