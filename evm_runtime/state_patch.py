"""State patches: the dev chain's way to set an account's balance, nonce, code or storage.

Hardhat's and Anvil's `setBalance`, `setCode`, `setNonce` and `setStorageAt` change state
without a transaction. Here state only changes through blocks, so a patch is sealed as a
record block (`evm_runtime.record_blocks`): no transactions, the parent's state with the
patch's changes applied in order, `extraData` the hash of the patch's canonical encoding
(`encode_patch`), stored with the block's state nodes. Replaying the block is applying the
patch again (`build_patch_block`), which must give the stored header.

Only dev chains make such blocks (production nodes do not serve the methods).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import rlp
from eth.abc import BlockHeaderAPI, StateAPI

from .block_builder import BuiltBlock
from .chain import ChainParams
from .exceptions import InvalidRequest
from .record_blocks import build_record_block, stored_record
from .state_db import NodeCache
from .types import Address

PATCH_MAGIC = b"conclave dev state patch v1\x00"
"""Opens every encoded patch, so that no trie node can be taken for one."""
MAX_UINT256 = 2**256 - 1
MAX_NONCE = 2**64 - 2
MAX_CODE_BYTES = 24_576
"""EIP-170: the largest code a contract can have."""


@dataclass(frozen=True, slots=True)
class SetBalance:
    address: Address
    balance: int


@dataclass(frozen=True, slots=True)
class SetNonce:
    address: Address
    nonce: int


@dataclass(frozen=True, slots=True)
class SetCode:
    address: Address
    code: bytes


@dataclass(frozen=True, slots=True)
class SetStorage:
    address: Address
    slot: int
    value: int


StateChange = SetBalance | SetNonce | SetCode | SetStorage
_KINDS: tuple[type[StateChange], ...] = (SetBalance, SetNonce, SetCode, SetStorage)


@dataclass(frozen=True, slots=True)
class StatePatch:
    """State changes applied in order, outside any transaction (dev chains only)."""

    changes: tuple[StateChange, ...]


def check_change(change: StateChange) -> None:
    """Raise InvalidRequest if `change` is out of the ranges the state can hold."""
    if len(change.address) != 20:
        raise InvalidRequest("an address has 20 bytes")
    if isinstance(change, SetBalance) and not 0 <= change.balance <= MAX_UINT256:
        raise InvalidRequest("a balance is from 0 to 2^256 - 1 wei")
    if isinstance(change, SetNonce) and not 0 <= change.nonce <= MAX_NONCE:
        raise InvalidRequest(f"a nonce is from 0 to {MAX_NONCE} (EIP-2681)")
    if isinstance(change, SetCode) and len(change.code) > MAX_CODE_BYTES:
        raise InvalidRequest(f"code has at most {MAX_CODE_BYTES} bytes (EIP-170), got {len(change.code)}")
    if isinstance(change, SetStorage) and not (
        0 <= change.slot <= MAX_UINT256 and 0 <= change.value <= MAX_UINT256
    ):
        raise InvalidRequest("storage slots and values are 32-byte words")


def _fields(change: StateChange) -> list[object]:
    if isinstance(change, SetBalance):
        return [change.balance]
    if isinstance(change, SetNonce):
        return [change.nonce]
    if isinstance(change, SetCode):
        return [change.code]
    return [change.slot, change.value]


def encode_patch(patch: StatePatch) -> bytes:
    """The canonical encoding: `PATCH_MAGIC ‖ RLP([[kind, address, *fields], ...])`."""
    items = [[_KINDS.index(type(change)), change.address, *_fields(change)] for change in patch.changes]
    return PATCH_MAGIC + rlp.encode(items)


def decode_patch(encoded: bytes) -> StatePatch | None:
    """The patch `encoded` holds, or None if it is not an encoded patch."""
    if not encoded.startswith(PATCH_MAGIC):
        return None
    try:
        items = rlp.decode(encoded[len(PATCH_MAGIC) :])
        changes = tuple(_decode_change(item) for item in items)
    except (rlp.DecodingError, ValueError, IndexError, TypeError):
        return None
    return StatePatch(changes)


def _decode_change(item: list[bytes]) -> StateChange:
    kind, address, *fields = item
    cls = _KINDS[rlp.sedes.big_endian_int.deserialize(kind)]
    as_int: Callable[[bytes], int] = rlp.sedes.big_endian_int.deserialize
    values: list[object] = [fields[0]] if cls is SetCode else [as_int(field) for field in fields]
    return cls(Address(address), *values)  # type: ignore[arg-type]


def _apply(state: StateAPI, change: StateChange) -> None:
    if isinstance(change, SetBalance):
        state.set_balance(change.address, change.balance)
    elif isinstance(change, SetNonce):
        state.set_nonce(change.address, change.nonce)
    elif isinstance(change, SetCode):
        state.set_code(change.address, change.code)
    else:
        state.set_storage(change.address, change.slot, change.value)


def build_patch_block(
    parent: BlockHeaderAPI,
    patch: StatePatch,
    params: ChainParams,
    coinbase: Address,
    timestamp: int,
    cache: NodeCache,
) -> BuiltBlock:
    """The block after `parent` whose state is `parent`'s with `patch` applied."""
    for change in patch.changes:
        check_change(change)

    def apply(state: StateAPI) -> None:
        for change in patch.changes:
            _apply(state, change)

    return build_record_block(parent, encode_patch(patch), apply, params, coinbase, timestamp, cache)


def stored_patch(header: BlockHeaderAPI, cache: NodeCache) -> StatePatch | None:
    """The patch a block applied, if it is a patch block (its `extraData` names a stored patch)."""
    encoded = stored_record(header, cache, PATCH_MAGIC)
    return None if encoded is None else decode_patch(encoded)
