"""State patches: the dev chain's way to set an account's balance, nonce, code or storage.

Hardhat's and Anvil's `setBalance`, `setCode`, `setNonce` and `setStorageAt` change state
without a transaction. Here state only changes through blocks, so a patch is sealed as a
block of its own, and stays verifiable:

- the block has no transactions; its state is the parent's with the patch applied, in
  the order the patch lists its changes;
- its `extraData` is the keccak hash of the patch's canonical encoding (`encode_patch`),
  and that encoding is stored with the block's state nodes under the same hash (the
  state node table is content-addressed, so it is checked like every node);
- replaying the block is applying the patch again (`build_patch_block`), which must give
  the stored header, as a block of transactions must.

Only dev chains make such blocks (production nodes do not serve the methods).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import rlp
from eth.abc import BlockHeaderAPI, StateAPI
from eth_hash.auto import keccak

from .block_builder import BlockEnv, BuiltBlock, child_header, rules_after
from .chain import VM, ChainParams
from .exceptions import InvalidRequest
from .state_db import NodeCache, StateOverlay
from .trie_root import BLANK_ROOT
from .types import Address, Hash32

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


def patch_hash(encoded: bytes) -> Hash32:
    return Hash32(keccak(encoded))


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
    """The block after `parent` whose state is `parent`'s with `patch` applied.

    Its state writes include the encoded patch under its hash, which is the block's
    `extraData`, so the stored chain says what was changed and can be replayed.
    """
    for change in patch.changes:
        check_change(change)
    encoded = encode_patch(patch)
    digest = patch_hash(encoded)
    env = BlockEnv(coinbase=coinbase, timestamp=timestamp, extra_data=digest)
    header = child_header(parent, params, env, rules_after(parent, params, cache))
    overlay = StateOverlay(cache)
    state = VM.build_state(overlay, header, params.context, ())
    for change in patch.changes:
        _apply(state, change)
    state.persist()
    sealed = header.copy(
        state_root=state.state_root,
        transaction_root=BLANK_ROOT,
        receipt_root=BLANK_ROOT,
        bloom=0,
        gas_used=0,
    )
    writes = dict(overlay.writes)
    writes[digest] = encoded
    return BuiltBlock(header=sealed, transactions=(), state_writes=writes, deferred=(), dropped=())


def stored_patch(header: BlockHeaderAPI, cache: NodeCache) -> StatePatch | None:
    """The patch a block applied, if it is a patch block (its `extraData` names a stored patch)."""
    if len(header.extra_data) != 32:
        return None
    encoded = cache.get(header.extra_data)
    if encoded is None or patch_hash(encoded) != header.extra_data:
        return None
    return decode_patch(encoded)
