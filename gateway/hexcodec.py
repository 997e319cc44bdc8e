"""Hex encoding of JSON-RPC values, as the execution-apis spec defines them.

Quantities are `0x`-prefixed hex with no leading zeros (`0x0` for zero); data is
`0x`-prefixed hex of whole bytes. Decoding is strict: anything else is refused.
"""

from __future__ import annotations

import re
from functools import lru_cache

from eth_utils import to_checksum_address

_QUANTITY = re.compile(r"0x(0|[1-9a-fA-F][0-9a-fA-F]*)")
_DATA = re.compile(r"0x([0-9a-fA-F]{2})*")
MAX_QUANTITY_DIGITS = 64


def quantity(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + value.hex()


@lru_cache(maxsize=4096)
def _checksummed(value: bytes) -> str:
    return to_checksum_address(value)


def address(value: bytes | None) -> str | None:
    """EIP-55 checksummed; the recent ones are remembered (checksumming costs keccak)."""
    return None if value is None else _checksummed(bytes(value))


def parse_quantity(text: object) -> int:
    """A spec quantity; raises ValueError with what was wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected a hex quantity string, got {type(text).__name__}")
    if len(text) > MAX_QUANTITY_DIGITS + 2 or not _QUANTITY.fullmatch(text):
        raise ValueError(
            f"invalid hex quantity {_clip(text)!r}: expected 0x-prefixed hex without leading zeros"
        )
    return int(text, 16)


def parse_data(text: object, *, length: int | None = None) -> bytes:
    """Spec bytes (optionally of an exact `length`); raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"expected a 0x-prefixed hex string, got {type(text).__name__}")
    if not _DATA.fullmatch(text):
        raise ValueError(f"invalid hex data {_clip(text)!r}: expected 0x followed by whole bytes")
    value = bytes.fromhex(text[2:])
    if length is not None and len(value) != length:
        raise ValueError(f"expected {length} bytes, got {len(value)}")
    return value


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
