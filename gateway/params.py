"""Parsers for JSON-RPC parameters: each takes the JSON value and returns plain data.

A parser raises ValueError with a message for the client; the dispatcher adds which
parameter it was. Parsers are declared per method in `methods`, so handlers only ever
see valid values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evm_runtime.overrides import AccountOverride, StateOverrides, Storage
from evm_runtime.types import Address

from .hexcodec import parse_data, parse_quantity

Parser = Callable[[Any], Any]

BLOCK_TAGS = frozenset({"latest", "earliest", "pending", "safe", "finalized"})


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block named by tag, number or hash (EIP-1898)."""

    tag: str | None = None
    number: int | None = None
    hash: bytes | None = None
    require_canonical: bool = False


def quantity(value: Any) -> int:
    return parse_quantity(value)


def nonce(value: Any) -> int:
    parsed = parse_quantity(value)
    if parsed >= 2**64 - 1:
        raise ValueError("a nonce must be below 2**64 - 1")
    return parsed


def address(value: Any) -> Address:
    return Address(parse_data(value, length=20))


def hash32(value: Any) -> bytes:
    return parse_data(value, length=32)


def data(value: Any) -> bytes:
    return parse_data(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


_STORAGE_SLOT = re.compile(r"0x[0-9a-fA-F]{1,64}")


def storage_slot(value: Any) -> int:
    """A storage position: hex of at most 32 bytes (leading zeros allowed)."""
    if not isinstance(value, str) or not _STORAGE_SLOT.fullmatch(value):
        raise ValueError("expected a storage slot as 0x-prefixed hex of at most 32 bytes")
    return int(value, 16)


def block_ref(value: Any) -> BlockRef:
    """A block tag, a block number, or an EIP-1898 object."""
    if isinstance(value, str):
        if value in BLOCK_TAGS:
            return BlockRef(tag=value)
        if len(value) == 66 and value.startswith("0x"):
            return BlockRef(hash=hash32(value))  # a bare block hash, as geth accepts
        if value.startswith("0x"):
            return BlockRef(number=parse_quantity(value))
        raise ValueError(
            f"invalid block {value[:40]!r}: expected a number or one of {', '.join(sorted(BLOCK_TAGS))}"
        )
    if isinstance(value, dict):
        if "blockHash" in value and "blockNumber" in value:
            raise ValueError("give either blockHash or blockNumber, not both")
        if "blockHash" in value:
            canonical = value.get("requireCanonical", False)
            return BlockRef(hash=hash32(value["blockHash"]), require_canonical=boolean(canonical))
        if "blockNumber" in value:
            number = value["blockNumber"]
            if not isinstance(number, str):
                raise ValueError("expected a block tag or number as blockNumber")
            return block_ref(number)
        raise ValueError("a block object needs blockHash or blockNumber")
    raise ValueError(f"expected a block tag, number or object, got {type(value).__name__}")


def block_number_or_tag(value: Any) -> BlockRef:
    """A block tag or number (no hashes), as eth_getBlockByNumber takes."""
    if isinstance(value, dict):
        raise ValueError("expected a block number or tag, not an object")
    if isinstance(value, str) and value in BLOCK_TAGS:
        return BlockRef(tag=value)
    return BlockRef(number=parse_quantity(value))


def optional(parser: Parser) -> Parser:
    def parse(value: Any) -> Any:
        return None if value is None else parser(value)

    return parse


def list_of(parser: Parser, *, max_items: int) -> Parser:
    def parse(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"expected an array, got {type(value).__name__}")
        if len(value) > max_items:
            raise ValueError(f"too many items: {len(value)}, at most {max_items}")
        return [parser(item) for item in value]

    return parse


MAX_FILTER_ADDRESSES = 1_000
MAX_TOPIC_ALTERNATIVES = 1_000


@dataclass(frozen=True, slots=True)
class CallObject:
    """The fields of a GenericTransaction that a call or estimate uses."""

    sender: Address | None = None
    to: Address | None = None
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int = 0
    data: bytes = b""
    nonce: int | None = None
    access_list: tuple[tuple[Address, tuple[int, ...]], ...] = ()


def _access_list(value: Any) -> tuple[tuple[Address, tuple[int, ...]], ...]:
    if not isinstance(value, list):
        raise ValueError("accessList must be an array of {address, storageKeys}")
    entries = []
    for entry in value:
        if not isinstance(entry, dict) or "address" not in entry:
            raise ValueError("each accessList entry needs an address and storageKeys")
        keys = entry.get("storageKeys", [])
        if not isinstance(keys, list):
            raise ValueError("storageKeys must be an array")
        entries.append((address(entry["address"]), tuple(int.from_bytes(hash32(k), "big") for k in keys)))
    return tuple(entries)


def call_object(value: Any) -> CallObject:
    """A transaction call object (eth_call, eth_estimateGas)."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a transaction object, got {type(value).__name__}")
    payload = value.get("input")
    legacy_payload = value.get("data")
    if payload is not None and legacy_payload is not None and payload != legacy_payload:
        raise ValueError("both input and data are set and differ: send only input")
    if value.get("gasPrice") is not None and (
        value.get("maxFeePerGas") is not None or value.get("maxPriorityFeePerGas") is not None
    ):
        raise ValueError("give either gasPrice or maxFeePerGas/maxPriorityFeePerGas, not both")
    fields = {
        "sender": optional(address)(value.get("from")),
        "to": optional(address)(value.get("to")),
        "gas": optional(quantity)(value.get("gas")),
        "gas_price": optional(quantity)(value.get("gasPrice")),
        "max_fee_per_gas": optional(quantity)(value.get("maxFeePerGas")),
        "max_priority_fee_per_gas": optional(quantity)(value.get("maxPriorityFeePerGas")),
        "value": optional(quantity)(value.get("value")) or 0,
        "data": optional(data)(payload if payload is not None else legacy_payload) or b"",
        "nonce": optional(nonce)(value.get("nonce")),
        "access_list": _access_list(value["accessList"]) if value.get("accessList") else (),
    }
    return CallObject(**fields)


@dataclass(frozen=True, slots=True)
class LogFilter:
    from_block: BlockRef | None
    to_block: BlockRef | None
    block_hash: bytes | None
    addresses: tuple[bytes, ...]
    topics: tuple[tuple[bytes, ...] | None, ...]


def _topic_position(value: Any) -> tuple[bytes, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) > MAX_TOPIC_ALTERNATIVES:
            raise ValueError(f"too many alternatives for one topic: at most {MAX_TOPIC_ALTERNATIVES}")
        return tuple(hash32(item) for item in value) or None
    return (hash32(value),)


def log_filter(value: Any) -> LogFilter:
    """A log filter object (eth_getLogs)."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a filter object, got {type(value).__name__}")
    block_hash = optional(hash32)(value.get("blockHash"))
    if block_hash is not None and (value.get("fromBlock") is not None or value.get("toBlock") is not None):
        raise ValueError("blockHash cannot be combined with fromBlock or toBlock")
    raw_addresses = value.get("address")
    if raw_addresses is None:
        addresses: tuple[bytes, ...] = ()
    elif isinstance(raw_addresses, list):
        addresses = tuple(list_of(address, max_items=MAX_FILTER_ADDRESSES)(raw_addresses))
    else:
        addresses = (address(raw_addresses),)
    topics = value.get("topics") or []
    if not isinstance(topics, list) or len(topics) > 4:
        raise ValueError("topics must be an array of at most 4 positions")
    return LogFilter(
        from_block=optional(block_number_or_tag)(value.get("fromBlock")),
        to_block=optional(block_number_or_tag)(value.get("toBlock")),
        block_hash=block_hash,
        addresses=addresses,
        topics=tuple(_topic_position(position) for position in topics),
    )


# -- state overrides (eth_call, eth_estimateGas, eth_simulateV1) ----------------------------

MAX_UINT64 = 2**64 - 1
MAX_OVERRIDDEN_ACCOUNTS = 1_000
MAX_OVERRIDDEN_SLOTS = 10_000
_ACCOUNT_FIELDS = ("balance", "nonce", "code", "state", "stateDiff", "movePrecompileToAddress")
_WORD = re.compile(r"0x[0-9a-fA-F]{1,64}")


def _shown(value: Any, limit: int = 50) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def check_fields(value: dict[str, Any], known: tuple[str, ...], what: str) -> None:
    """Refuse members of `value` not named in `known`, naming them and the ones known."""
    unknown = sorted(set(value) - set(known))
    if unknown:
        names = ", ".join(_shown(name, 30) for name in unknown[:5])
        raise ValueError(f"unknown field(s) {names} in {what}: expected {', '.join(known)}")


def uint64(value: Any) -> int:
    parsed = parse_quantity(value)
    if parsed > MAX_UINT64:
        raise ValueError(f"expected a quantity of at most 64 bits, got {value}")
    return parsed


def word(value: Any) -> int:
    """A 32-byte storage value: hex of at most 32 bytes (leading zeros allowed)."""
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        raise ValueError(f"expected a 32-byte value as 0x-prefixed hex, got {_shown(value)}")
    return int(value, 16)


def _storage(value: Any, what: str) -> Storage:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object from storage slots to 32-byte values")
    slots: dict[int, int] = {}
    for key, item in value.items():
        try:
            slot = storage_slot(key)
            if slot in slots:
                raise ValueError("the slot is given twice")
            slots[slot] = word(item)
        except ValueError as exc:
            raise ValueError(f"{what} slot {_shown(key)}: {exc}") from None
    return tuple(slots.items())


def _account_override(value: Any) -> AccountOverride:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of {', '.join(_ACCOUNT_FIELDS)}, got {type(value).__name__}")
    check_fields(value, _ACCOUNT_FIELDS, "an account override")
    if value.get("state") is not None and value.get("stateDiff") is not None:
        raise ValueError("give state (all storage) or stateDiff (some slots), not both")
    fields: dict[str, Any] = {}
    for name, parse, key in (
        ("balance", quantity, "balance"),
        ("nonce", uint64, "nonce"),
        ("code", data, "code"),
        ("move_precompile_to", address, "movePrecompileToAddress"),
    ):
        if value.get(key) is not None:
            try:
                fields[name] = parse(value[key])
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    if value.get("state") is not None:
        fields["state"] = _storage(value["state"], "state")
    if value.get("stateDiff") is not None:
        fields["state_diff"] = _storage(value["stateDiff"], "stateDiff")
    return AccountOverride(**fields)


def state_overrides(value: Any) -> StateOverrides:
    """{address: {balance?, nonce?, code?, state? | stateDiff?, movePrecompileToAddress?}}."""
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise ValueError(f"expected an object from addresses to account overrides, got {kind}")
    if len(value) > MAX_OVERRIDDEN_ACCOUNTS:
        raise ValueError(f"too many accounts overridden: {len(value)}, at most {MAX_OVERRIDDEN_ACCOUNTS}")
    accounts: dict[Address, AccountOverride] = {}
    for key, item in value.items():
        try:
            account = address(key)
            if account in accounts:
                raise ValueError("the address is overridden twice (addresses are not case-sensitive)")
            accounts[account] = _account_override(item)
        except ValueError as exc:
            raise ValueError(f"account {_shown(key)}: {exc}") from None
    slots = sum(len(item.state or item.state_diff or ()) for item in accounts.values())
    if slots > MAX_OVERRIDDEN_SLOTS:
        raise ValueError(f"too many storage slots overridden: {slots}, at most {MAX_OVERRIDDEN_SLOTS}")
    return StateOverrides(tuple(accounts.items()))
