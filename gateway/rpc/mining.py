"""Methods of proof-of-work chains, answered as a post-merge node does.

Conclave's validators are attested, not mining: nothing is mined and no block has
uncles. eth_getWork and eth_submitWork are not served (-32601), as on geth after the merge.
"""

from __future__ import annotations

from .. import params as p
from ..hexcodec import quantity
from ..node import Node
from .registry import Param, rpc


@rpc("eth_mining")
def eth_mining(node: Node) -> bool:
    return False


@rpc("eth_hashrate")
def eth_hashrate(node: Node) -> str:
    return quantity(0)


@rpc("eth_getUncleCountByBlockHash", Param("hash", p.hash32))
def eth_get_uncle_count_by_block_hash(node: Node, block_hash: bytes) -> str | None:
    return None if node.store.block_by_hash(block_hash) is None else quantity(0)


@rpc("eth_getUncleCountByBlockNumber", Param("block", p.block_number_or_tag))
def eth_get_uncle_count_by_block_number(node: Node, ref: p.BlockRef) -> str | None:
    return None if node.find_block(ref) is None else quantity(0)


@rpc("eth_getUncleByBlockHashAndIndex", Param("hash", p.hash32), Param("index", p.quantity))
def eth_get_uncle_by_block_hash_and_index(node: Node, block_hash: bytes, index: int) -> None:
    return None


@rpc("eth_getUncleByBlockNumberAndIndex", Param("block", p.block_number_or_tag), Param("index", p.quantity))
def eth_get_uncle_by_block_number_and_index(node: Node, ref: p.BlockRef, index: int) -> None:
    return None
