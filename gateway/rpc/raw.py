"""The debug_getRaw* getters: blocks, headers, transactions and receipts as encoded bytes.

Headers and blocks are RLP (a block is [header, transactions, uncles, withdrawals]);
transactions and receipts are EIP-2718 encodings, exactly the bytes the roots commit to.
Nothing is pruned and no block is ever bad here: debug_getBadBlocks answers [].
"""

from __future__ import annotations

from typing import Any

from evm_runtime.exceptions import NotFound

from .. import params as p
from ..hexcodec import data
from ..node import Node
from ..views import block_encoding
from .blocks import block_contents
from .blocks import block_receipts as _receipts
from .registry import Param, rpc

BLOCK = Param("block", p.block_number_or_tag)


@rpc("debug_getRawHeader", BLOCK)
def debug_get_raw_header(node: Node, ref: p.BlockRef) -> str:
    return data(node.block(ref).header)


@rpc("debug_getRawBlock", BLOCK)
def debug_get_raw_block(node: Node, ref: p.BlockRef) -> str:
    """Confidential transactions the caller may not see are left out."""
    block = node.block(ref)
    return data(block_encoding(block.header, [tx.raw for tx, _, _ in block_contents(node, block)]))


@rpc("debug_getRawTransaction", Param("hash", p.hash32))
def debug_get_raw_transaction(node: Node, tx_hash: bytes) -> str:
    stored = node.store.transaction(tx_hash)
    if stored is not None:
        return data(stored.raw)
    opened = node.confidential_transaction(tx_hash)
    if opened is None:
        raise NotFound(f"transaction 0x{tx_hash.hex()} not found")
    return data(opened.record.raw)


@rpc("debug_getRawReceipts", BLOCK)
def debug_get_raw_receipts(node: Node, ref: p.BlockRef) -> list[str]:
    """Receipts of confidential transactions the caller may not see are left out."""
    block = node.block(ref)
    public = node.store.receipt_encodings(block.number)
    if len(public) == block.transaction_count:
        return [data(encoded) for encoded in public]
    return [data(receipt.encoded) for _, receipt, _ in _receipts(node, block)]


@rpc("debug_getBadBlocks")
def debug_get_bad_blocks(node: Node) -> list[Any]:
    return []
