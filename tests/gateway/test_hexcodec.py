"""Hex encoding of JSON-RPC quantities and data (`gateway.hexcodec`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.hexcodec import MAX_QUANTITY_DIGITS, address, data, parse_data, parse_quantity, quantity

MAX_QUANTITY = 16**MAX_QUANTITY_DIGITS - 1


@given(st.integers(0, MAX_QUANTITY))
def test_quantities_round_trip(value: int) -> None:
    text = quantity(value)
    assert text.startswith("0x")
    assert text == "0x0" or text[2] != "0"
    assert parse_quantity(text) == value


@given(st.integers(0, MAX_QUANTITY))
def test_upper_case_hex_digits_are_accepted(value: int) -> None:
    assert parse_quantity("0x" + quantity(value)[2:].upper()) == value


@given(st.binary(max_size=300))
def test_data_round_trips(value: bytes) -> None:
    text = data(value)
    assert len(text) == 2 + 2 * len(value)
    assert parse_data(text) == value
    assert parse_data(text.upper().replace("0X", "0x")) == value


@given(st.binary(max_size=40), st.integers(0, 40))
def test_data_of_an_exact_length(value: bytes, length: int) -> None:
    if len(value) == length:
        assert parse_data(data(value), length=length) == value
    else:
        with pytest.raises(ValueError, match=f"expected {length} bytes, got {len(value)}"):
            parse_data(data(value), length=length)


def test_zero() -> None:
    assert quantity(0) == "0x0"
    assert parse_quantity("0x0") == 0
    assert data(b"") == "0x"
    assert parse_data("0x") == b""


@pytest.mark.parametrize(
    "text",
    [
        "0x00",
        "0x01",
        "0x0000",
        "0x",
        "0",
        "1",
        "",
        "ff",
        "0X1",
        "x1",
        "0x1g",
        "-0x1",
        "0x-1",
        "0x 1",
        " 0x1",
        "0x1 ",
        "0x+1",
        "0x1_0",
        "0x１",
        "0x1.0",
        "0xⅠ",
    ],
)
def test_quantities_are_parsed_strictly(text: str) -> None:
    with pytest.raises(ValueError, match="invalid hex quantity"):
        parse_quantity(text)


def test_over_long_quantities_are_refused() -> None:
    assert parse_quantity("0x" + "f" * MAX_QUANTITY_DIGITS) == MAX_QUANTITY
    with pytest.raises(ValueError, match="invalid hex quantity"):
        parse_quantity("0x1" + "0" * MAX_QUANTITY_DIGITS)
    with pytest.raises(ValueError) as caught:
        parse_quantity("0x" + "1" * 100_000)
    assert len(str(caught.value)) < 200  # the echo of the input is clipped


@pytest.mark.parametrize("value", [None, 1, 1.0, True, b"0x1", ["0x1"], {"0x1": 1}])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match=f"got {type(value).__name__}"):
        parse_quantity(value)
    with pytest.raises(ValueError, match=f"got {type(value).__name__}"):
        parse_data(value)


@pytest.mark.parametrize(
    "text",
    ["0x0", "0x123", "12", "", "0X12", "x12", "0x1g", "0x 12", "0x12 ", " 0x12", "0x1_2", "0x１２", "0x-1"],
)
def test_data_is_parsed_strictly(text: str) -> None:
    with pytest.raises(ValueError, match="invalid hex data"):
        parse_data(text)


@pytest.mark.parametrize("parse,text", [(parse_quantity, "0x1\n"), (parse_data, "0x12\n")])
def test_a_trailing_newline_is_refused(parse, text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


@given(st.text(max_size=20))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    for parse in (parse_quantity, parse_data):
        try:
            parse(text)
        except ValueError:
            pass


@given(st.text(alphabet="0x123abcdefABCDEF_ +-", max_size=12))
def test_whatever_parses_is_canonical(text: str) -> None:
    """Only the canonical spelling (up to the case of the digits) of a value is accepted."""
    try:
        value = parse_quantity(text)
    except ValueError:
        pass
    else:
        assert quantity(value) == text.lower()
    try:
        payload = parse_data(text)
    except ValueError:
        pass
    else:
        assert data(payload) == text.lower()


def test_addresses_are_checksummed() -> None:
    assert (
        address(bytes.fromhex("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"))
        == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    )
    assert address(None) is None
