"""JSON views of blocks, transactions, receipts and logs, shaped as the spec's schemas."""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, SignedTransactionAPI

from evm_runtime.chain import VM
from evm_runtime.transactions import (
    ACCESS_LIST_TYPE,
    LEGACY_TYPE,
    SET_CODE_TYPE,
    DecodedTransaction,
    effective_gas_price,
    transaction_type,
)
from evm_runtime.types import ExecutedTransaction, LogRecord
from ledger.store import BlockRecord, StoredBlock, StoredLog, StoredReceipt, StoredTransaction

from .hexcodec import address, data, quantity

_builder = VM.get_transaction_builder()

Json = dict[str, Any]


def decode_transaction(raw: bytes) -> SignedTransactionAPI:
    return _builder.decode(raw)


def header_view(header: BlockHeaderAPI, size: int) -> Json:
    return {
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "sha3Uncles": data(header.uncles_hash),
        "miner": address(header.coinbase),
        "stateRoot": data(header.state_root),
        "transactionsRoot": data(header.transaction_root),
        "receiptsRoot": data(header.receipt_root),
        "logsBloom": data(header.bloom.to_bytes(256, "big")),
        "difficulty": quantity(header.difficulty),
        "number": quantity(header.block_number),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.timestamp),
        "extraData": data(header.extra_data),
        "mixHash": data(header.mix_hash),
        "nonce": data(header.nonce),
        "baseFeePerGas": quantity(header.base_fee_per_gas),
        "withdrawalsRoot": data(header.withdrawals_root),
        "blobGasUsed": quantity(header.blob_gas_used),
        "excessBlobGas": quantity(header.excess_blob_gas),
        "parentBeaconBlockRoot": data(header.parent_beacon_block_root),
        "requestsHash": data(header.requests_hash),
        "size": quantity(size),
        "uncles": [],
        "withdrawals": [],
    }


def block_encoding(header: BlockHeaderAPI | bytes, raw_transactions: list[bytes]) -> bytes:
    """The block's RLP encoding: [header, transactions, uncles, withdrawals]."""
    head = rlp.decode(header) if isinstance(header, bytes) else header
    return rlp.encode([head, [_as_rlp_item(raw) for raw in raw_transactions], [], []])


def block_size(header: BlockHeaderAPI, raw_transactions: list[bytes]) -> int:
    """The length of the block's RLP encoding."""
    return len(block_encoding(header, raw_transactions))


def _as_rlp_item(raw: bytes) -> object:
    # Typed transactions are RLP byte strings in a block; legacy ones are RLP lists.
    return rlp.decode(raw) if raw[0] >= 0xC0 else raw


def transaction_view(
    tx: SignedTransactionAPI,
    *,
    sender: bytes,
    block_hash: bytes | None,
    block_number: int | None,
    block_timestamp: int | None,
    index: int | None,
    base_fee: int | None,
) -> Json:
    kind = transaction_type(tx)
    view: Json = {
        "blockHash": data(block_hash) if block_hash is not None else None,
        "blockNumber": quantity(block_number) if block_number is not None else None,
        "blockTimestamp": quantity(block_timestamp) if block_timestamp is not None else None,
        "from": address(sender),
        "hash": data(tx.hash),
        "transactionIndex": quantity(index) if index is not None else None,
        "type": quantity(kind),
        "nonce": quantity(tx.nonce),
        "to": address(tx.to) if tx.to else None,
        "gas": quantity(tx.gas),
        "value": quantity(tx.value),
        "input": data(tx.data),
        "r": quantity(tx.r),
        "s": quantity(tx.s),
    }
    if kind == LEGACY_TYPE:
        view["gasPrice"] = quantity(tx.gas_price)
        view["v"] = quantity(tx.v)
        if tx.chain_id is not None:
            view["chainId"] = quantity(tx.chain_id)
        return view
    view["chainId"] = quantity(tx.chain_id)
    view["accessList"] = [
        {"address": address(entry_address), "storageKeys": [data(k.to_bytes(32, "big")) for k in keys]}
        for entry_address, keys in tx.access_list
    ]
    view["yParity"] = quantity(tx.y_parity)
    view["v"] = quantity(tx.y_parity)
    if kind == ACCESS_LIST_TYPE:
        view["gasPrice"] = quantity(tx.gas_price)
        return view
    view["maxFeePerGas"] = quantity(tx.max_fee_per_gas)
    view["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee_per_gas)
    view["gasPrice"] = quantity(
        effective_gas_price(tx, base_fee) if base_fee is not None else tx.max_fee_per_gas
    )
    if kind == SET_CODE_TYPE:
        view["authorizationList"] = [
            {
                "chainId": quantity(auth.chain_id),
                "address": address(auth.address),
                "nonce": quantity(auth.nonce),
                "yParity": quantity(auth.y_parity),
                "r": quantity(auth.r),
                "s": quantity(auth.s),
            }
            for auth in tx.authorization_list
        ]
    return view


def log_view(log: StoredLog) -> Json:
    return {
        "removed": False,
        "logIndex": quantity(log.log_index),
        "transactionIndex": quantity(log.transaction_index),
        "transactionHash": data(log.transaction_hash),
        "blockHash": data(log.block_hash),
        "blockNumber": quantity(log.block_number),
        "blockTimestamp": quantity(log.block_timestamp),
        "address": address(log.address),
        "data": data(log.data),
        "topics": [data(topic) for topic in log.topics],
    }


def receipt_view(receipt: StoredReceipt, logs: list[StoredLog]) -> Json:
    return {
        "type": quantity(receipt.tx_type),
        "transactionHash": data(receipt.transaction_hash),
        "transactionIndex": quantity(receipt.transaction_index),
        "blockHash": data(receipt.block_hash),
        "blockNumber": quantity(receipt.block_number),
        "from": address(receipt.sender),
        "to": address(receipt.recipient),
        "cumulativeGasUsed": quantity(receipt.cumulative_gas_used),
        "gasUsed": quantity(receipt.gas_used),
        "contractAddress": address(receipt.contract_address),
        "logs": [log_view(log) for log in logs],
        "logsBloom": data(receipt_bloom(receipt.encoded)),
        "status": quantity(receipt.status),
        "effectiveGasPrice": quantity(receipt.effective_gas_price),
    }


def receipt_bloom(encoded: bytes) -> bytes:
    """The logs bloom inside an encoded (possibly typed) receipt."""
    payload = encoded[1:] if encoded[0] < 0xC0 else encoded
    return rlp.decode(payload)[2]


def opened_parts(
    record: ExecutedTransaction, block: StoredBlock
) -> tuple[StoredTransaction, StoredReceipt, list[StoredLog]]:
    """An opened confidential transaction as the stored rows a public one has."""
    transaction = StoredTransaction(
        hash=record.hash,
        block_number=block.number,
        block_hash=block.hash,
        transaction_index=record.index,
        sender=record.sender,
        raw=record.raw,
    )
    receipt = StoredReceipt(
        transaction_hash=record.hash,
        block_number=block.number,
        block_hash=block.hash,
        transaction_index=record.index,
        sender=record.sender,
        recipient=record.to,
        tx_type=record.tx_type,
        status=record.status,
        gas_used=record.gas_used,
        cumulative_gas_used=record.cumulative_gas_used,
        effective_gas_price=record.effective_gas_price,
        contract_address=record.contract_address,
        first_log_index=record.logs[0].log_index if record.logs else 0,
        encoded=record.receipt_rlp,
    )
    return transaction, receipt, [stored_log(block, record, entry) for entry in record.logs]


def stored_log(
    block: StoredBlock | BlockRecord, executed: ExecutedTransaction, entry: LogRecord
) -> StoredLog:
    """A log of `executed` in `block` as the ledger's logs table gives it."""
    return StoredLog(
        block_number=block.number,
        block_hash=block.hash,
        block_timestamp=block.timestamp,
        log_index=entry.log_index,
        transaction_hash=executed.hash,
        transaction_index=executed.index,
        address=entry.address,
        topics=entry.topics,
        data=entry.data,
    )


def pending_view(decoded: DecodedTransaction) -> Json:
    """A waiting transaction: no block, index or effective price yet."""
    return transaction_view(
        decoded.tx,
        sender=decoded.sender,
        block_hash=None,
        block_number=None,
        block_timestamp=None,
        index=None,
        base_fee=None,
    )
