"""Controls of a dev chain, as Hardhat and Anvil offer them (`conclave dev` only).

- `evm_mine([timestamp])` seals a block now, even an empty one; `hardhat_mine` /
  `anvil_mine(count, interval)` seal several, `interval` seconds apart;
- `evm_increaseTime(seconds)` moves every later block's time forward;
  `evm_setNextBlockTimestamp(time)` sets the next block's, which must be later than the
  latest block's;
- `evm_snapshot` saves the head and the time offset and returns an id; `evm_revert(id)`
  cuts the chain back to it (later blocks and every waiting transaction are gone),
  restores the time offset and forgets that snapshot and the later ones; an unknown id
  answers false;
- `hardhat_setBalance` / `anvil_setBalance`, `…_setNonce`, `…_setCode` and
  `…_setStorageAt` seal a block of no transactions whose state carries the change (a
  state patch, `evm_runtime.state_patch`), since state only changes through blocks here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evm_runtime.exceptions import InvalidRequest
from evm_runtime.state_patch import (
    SetBalance,
    SetCode,
    SetNonce,
    SetStorage,
    StateChange,
    StatePatch,
    check_change,
)
from evm_runtime.types import Address

from .. import params as p
from ..hexcodec import quantity
from ..node import DevSnapshot, Node
from .registry import Param, rpc

MAX_MINED_BLOCKS = 10_000


def _seconds(value: Any) -> int:
    """Seconds as a JSON number or a hex quantity (Hardhat sends either)."""
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")
    seconds = value if isinstance(value, int) else p.quantity(value)
    if not 0 <= seconds < 2**63:
        raise ValueError("expected a number of seconds from 0 to 2^63")
    return seconds


def _check_after_head(node: Node, timestamp: int) -> None:
    if timestamp <= node.head.timestamp:
        raise InvalidRequest(
            f"timestamp {timestamp} is not after the latest block's ({node.head.timestamp}): pick a later one"
        )


@rpc("evm_mine", Param("timestamp", _seconds, required=False), dev_only=True)
def evm_mine(node: Node, timestamp: int | None) -> str:
    if timestamp is not None:
        _check_after_head(node, timestamp)
        node.ordering.next_timestamp = timestamp
    node.ordering.seal(allow_empty=True)
    return "0x0"


def _mine(node: Node, count: int | None, interval: int | None) -> None:
    """Seal `count` blocks: the first at the next block's time, the others `interval`
    seconds apart (1 by default), as Hardhat mines them."""
    blocks = 1 if count is None else count
    if not 0 < blocks <= MAX_MINED_BLOCKS:
        raise InvalidRequest(f"mine from 1 to {MAX_MINED_BLOCKS} blocks at a time, not {blocks}")
    for mined in range(blocks):
        if mined and interval:
            node.ordering.next_timestamp = node.head.timestamp + interval
        node.ordering.seal(allow_empty=True)


@rpc(
    "hardhat_mine",
    Param("count", _seconds, required=False),
    Param("interval", _seconds, required=False),
    dev_only=True,
)
def hardhat_mine(node: Node, count: int | None, interval: int | None) -> bool:
    _mine(node, count, interval)
    return True


@rpc(
    "anvil_mine",
    Param("count", _seconds, required=False),
    Param("interval", _seconds, required=False),
    dev_only=True,
)
def anvil_mine(node: Node, count: int | None, interval: int | None) -> None:
    _mine(node, count, interval)


@rpc("evm_increaseTime", Param("seconds", _seconds), dev_only=True)
def evm_increase_time(node: Node, seconds: int) -> str:
    node.ordering.time_offset += seconds
    return quantity(node.ordering.time_offset)


@rpc("evm_setNextBlockTimestamp", Param("timestamp", _seconds), dev_only=True)
def evm_set_next_block_timestamp(node: Node, timestamp: int) -> None:
    _check_after_head(node, timestamp)
    node.ordering.next_timestamp = timestamp


@rpc("evm_snapshot", dev_only=True)
def evm_snapshot(node: Node) -> str:
    snapshot_id = max(node.dev_snapshots, default=0) + 1
    node.dev_snapshots[snapshot_id] = DevSnapshot(node.head.number, node.ordering.time_offset)
    return quantity(snapshot_id)


@rpc("evm_revert", Param("snapshot", p.quantity), dev_only=True)
def evm_revert(node: Node, snapshot_id: int) -> bool:
    saved = node.dev_snapshots.get(snapshot_id)
    if saved is None:
        return False
    for later in [known for known in node.dev_snapshots if known >= snapshot_id]:
        del node.dev_snapshots[later]
    node.rewind_to(saved.block_number)
    node.ordering.time_offset = saved.time_offset
    node.ordering.next_timestamp = None
    return True


# -- state patches ----------------------------------------------------------------------


def _patch(node: Node, change: StateChange) -> None:
    check_change(change)
    node.patch_state(StatePatch((change,)))


def _set_balance(node: Node, account: Address, balance: int) -> None:
    _patch(node, SetBalance(account, balance))


def _set_nonce(node: Node, account: Address, nonce: int) -> None:
    _patch(node, SetNonce(account, nonce))


def _set_code(node: Node, account: Address, code: bytes) -> None:
    _patch(node, SetCode(account, code))


def _set_storage_at(node: Node, account: Address, slot: int, value: bytes) -> None:
    _patch(node, SetStorage(account, slot, int.from_bytes(value, "big")))


_ACCOUNT = Param("address", p.address)
_PATCHES = {
    "setBalance": (_set_balance, (_ACCOUNT, Param("balance", p.quantity))),
    "setNonce": (_set_nonce, (_ACCOUNT, Param("nonce", p.quantity))),
    "setCode": (_set_code, (_ACCOUNT, Param("code", p.data))),
    "setStorageAt": (
        _set_storage_at,
        (_ACCOUNT, Param("slot", p.storage_slot), Param("value", p.hash32)),
    ),
}


def _answering(result: bool | None, handler: Callable[..., None]) -> Callable[..., bool | None]:
    """`handler`, answering `result` (Hardhat answers true, Anvil null)."""

    def answer(node: Node, *args: Any) -> bool | None:
        handler(node, *args)
        return result

    return answer


for _suffix, (_handler, _params) in _PATCHES.items():
    rpc(f"hardhat_{_suffix}", *_params, dev_only=True)(_answering(True, _handler))
    rpc(f"anvil_{_suffix}", *_params, dev_only=True)(_answering(None, _handler))
