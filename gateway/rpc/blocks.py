"""Transactions, receipts and blocks, stored or waiting in the pool."""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI

from evm_runtime.chain import decode_header
from ledger.store import StoredBlock, StoredLog, StoredReceipt, StoredTransaction

from .. import params as p
from ..hexcodec import data, quantity
from ..node import Node
from ..views import (
    block_size,
    decode_transaction,
    header_view,
    opened_parts,
    pending_view,
    receipt_view,
    transaction_view,
)
from .registry import Param, awaited, rpc

# -- transactions ---------------------------------------------------------------------


@rpc("eth_sendRawTransaction", Param("transaction", p.data))
def eth_send_raw_transaction(node: Node, raw: bytes) -> str:
    return data(node.send_raw_transaction(raw))


@awaited("eth_sendRawTransaction")
async def eth_send_raw_transaction_later(node: Node, raw: bytes) -> str:
    return data(await node.send_raw_transaction_later(raw))


def stored_transaction_view(
    node: Node, stored: Any, block: StoredBlock | None = None, header: BlockHeaderAPI | None = None
) -> dict[str, Any]:
    if block is None:
        block = node.store.block_by_number(stored.block_number)
        assert block is not None
    if header is None:
        header = decode_header(block.header)
    return transaction_view(
        decode_transaction(stored.raw),
        sender=stored.sender,
        block_hash=block.hash,
        block_number=block.number,
        block_timestamp=block.timestamp,
        index=stored.transaction_index,
        base_fee=header.base_fee_per_gas,
    )


def _opened(node: Node, tx_hash: bytes) -> tuple[StoredTransaction, StoredReceipt, list[StoredLog]] | None:
    """A confidential transaction the caller may see, as stored rows; None otherwise."""
    opened = node.confidential_transaction(tx_hash)
    if opened is None:
        return None
    block = node.store.block_by_number(opened.block_number)
    assert block is not None
    return opened_parts(opened.record, block)


@rpc("eth_getTransactionByHash", Param("hash", p.hash32))
def eth_get_transaction_by_hash(node: Node, tx_hash: bytes) -> dict[str, Any] | None:
    stored = node.store.transaction(tx_hash)
    if stored is not None:
        return stored_transaction_view(node, stored)
    opened = _opened(node, tx_hash)
    if opened is not None:
        return stored_transaction_view(node, opened[0])
    pending = node.pool.get(tx_hash)
    return None if pending is None or not node.may_see_pending(tx_hash) else pending_view(pending)


@rpc("eth_getTransactionReceipt", Param("hash", p.hash32))
def eth_get_transaction_receipt(node: Node, tx_hash: bytes) -> dict[str, Any] | None:
    receipt = node.store.receipt(tx_hash)
    if receipt is not None:
        return receipt_view(receipt, node.store.logs_of_transaction(tx_hash))
    opened = _opened(node, tx_hash)
    return None if opened is None else receipt_view(opened[1], opened[2])


# -- blocks ---------------------------------------------------------------------------


def block_contents(
    node: Node, block: StoredBlock
) -> list[tuple[StoredTransaction, StoredReceipt | None, list[StoredLog]]]:
    """The transactions of `block` the caller may see, in order: public ones (receipts and
    logs not read: None, []) and opened confidential ones (with theirs)."""
    if not block.transaction_count:
        return []
    found: list[tuple[StoredTransaction, StoredReceipt | None, list[StoredLog]]] = [
        (tx, None, []) for tx in node.store.transactions_of_block(block.number)
    ]
    if len(found) < block.transaction_count:
        found += [
            opened_parts(opened.record, block)
            for opened in node.confidential_transactions(block.number, block.number)
        ]
        found.sort(key=lambda parts: parts[0].transaction_index)
    return found


def _block_view(node: Node, block: StoredBlock | None, full: bool) -> dict[str, Any] | None:
    """A block as the caller may see it: confidential transactions it may not see are
    left out (the header, hence the hash, is the block's own)."""
    if block is None:
        return None
    header = decode_header(block.header)
    stored = [tx for tx, _, _ in block_contents(node, block)]
    view = header_view(header, block_size(header, [tx.raw for tx in stored]))
    if full:
        view["transactions"] = [stored_transaction_view(node, tx, block, header) for tx in stored]
    else:
        view["transactions"] = [data(tx.hash) for tx in stored]
    return view


@rpc(
    "eth_getBlockByNumber",
    Param("block", p.block_number_or_tag),
    Param("full", p.boolean, required=False, default=False),
)
def eth_get_block_by_number(node: Node, ref: p.BlockRef, full: bool) -> dict[str, Any] | None:
    return _block_view(node, node.find_block(ref), full)


@rpc("eth_getBlockByHash", Param("hash", p.hash32), Param("full", p.boolean, required=False, default=False))
def eth_get_block_by_hash(node: Node, block_hash: bytes, full: bool) -> dict[str, Any] | None:
    return _block_view(node, node.store.block_by_hash(block_hash), full)


def _visible_count(node: Node, block: StoredBlock | None) -> str | None:
    return None if block is None else quantity(len(block_contents(node, block)))


@rpc("eth_getBlockTransactionCountByNumber", Param("block", p.block_number_or_tag))
def eth_get_block_transaction_count_by_number(node: Node, ref: p.BlockRef) -> str | None:
    return _visible_count(node, node.find_block(ref))


@rpc("eth_getBlockTransactionCountByHash", Param("hash", p.hash32))
def eth_get_block_transaction_count_by_hash(node: Node, block_hash: bytes) -> str | None:
    return _visible_count(node, node.store.block_by_hash(block_hash))


@rpc(
    "eth_getTransactionByBlockNumberAndIndex",
    Param("block", p.block_number_or_tag),
    Param("index", p.quantity),
)
def eth_get_transaction_by_block_number_and_index(
    node: Node, ref: p.BlockRef, index: int
) -> dict[str, Any] | None:
    block = node.find_block(ref)
    return _transaction_at(node, block, index)


@rpc("eth_getTransactionByBlockHashAndIndex", Param("hash", p.hash32), Param("index", p.quantity))
def eth_get_transaction_by_block_hash_and_index(
    node: Node, block_hash: bytes, index: int
) -> dict[str, Any] | None:
    return _transaction_at(node, node.store.block_by_hash(block_hash), index)


def _transaction_at(node: Node, block: StoredBlock | None, index: int) -> dict[str, Any] | None:
    """The transaction at `index` of the block, positions counting every transaction; a
    confidential one the caller may not see is not there."""
    if block is None or index >= block.transaction_count:
        return None
    stored = node.store.transaction_at(block.number, index)
    if stored is None:
        stored = next((tx for tx, _, _ in block_contents(node, block) if tx.transaction_index == index), None)
    return None if stored is None else stored_transaction_view(node, stored, block)


@rpc("eth_getBlockReceipts", Param("block", p.block_ref))
def eth_get_block_receipts(node: Node, ref: p.BlockRef) -> list[dict[str, Any]] | None:
    block = node.find_block(ref)
    if block is None:
        return None
    return [receipt_view(receipt, logs) for _, receipt, logs in block_receipts(node, block)]


def block_receipts(
    node: Node, block: StoredBlock
) -> list[tuple[StoredTransaction | None, StoredReceipt, list[StoredLog]]]:
    """The receipts (with logs) of `block` the caller may see, in order."""
    logs_by_tx: dict[bytes, list[Any]] = {}
    for entry in node.store.logs_of_block(block.number):
        logs_by_tx.setdefault(entry.transaction_hash, []).append(entry)
    receipts: list[tuple[StoredTransaction | None, StoredReceipt, list[StoredLog]]] = [
        (None, receipt, logs_by_tx.get(receipt.transaction_hash, []))
        for receipt in node.store.receipts_of_block(block.number)
    ]
    if len(receipts) < block.transaction_count:
        opened = [
            opened_parts(opened.record, block)
            for opened in node.confidential_transactions(block.number, block.number)
        ]
        receipts += opened
        receipts.sort(key=lambda parts: parts[1].transaction_index)
    return receipts
