"""Controls of a dev chain, as Hardhat and Anvil offer them (`conclave dev` only).

- `evm_mine([timestamp])` seals a block now, even an empty one; `hardhat_mine` /
  `anvil_mine(count, interval)` seal several, `interval` seconds apart;
- `evm_increaseTime(seconds)` moves every later block's time forward;
  `evm_setNextBlockTimestamp(time)` sets the next block's, which must be later than the
  latest block's;
- `evm_snapshot` saves the head and returns an id; `evm_revert(id)` cuts the chain back
  to it (later blocks and every waiting transaction are gone) and forgets that snapshot
  and the later ones; an unknown id answers false.
"""

from __future__ import annotations

from typing import Any

from evm_runtime.exceptions import InvalidRequest

from .. import params as p
from ..hexcodec import quantity
from ..node import Node
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
    blocks = 1 if count is None else count
    if not 0 < blocks <= MAX_MINED_BLOCKS:
        raise InvalidRequest(f"mine from 1 to {MAX_MINED_BLOCKS} blocks at a time, not {blocks}")
    for _ in range(blocks):
        if interval:
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
    node.dev_snapshots[snapshot_id] = node.head.number
    return quantity(snapshot_id)


@rpc("evm_revert", Param("snapshot", p.quantity), dev_only=True)
def evm_revert(node: Node, snapshot_id: int) -> bool:
    block_number = node.dev_snapshots.get(snapshot_id)
    if block_number is None:
        return False
    for later in [known for known in node.dev_snapshots if known >= snapshot_id]:
        del node.dev_snapshots[later]
    node.rewind_to(block_number)
    return True
