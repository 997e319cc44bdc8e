"""Applying an ordered batch of transactions to a parent state to make a block.

The rule: transactions are tried in the order given. One that does not fit in the gas
left in the block waits for a later block; one the state refuses (its nonce was taken,
its sender can no longer pay) or a system contract refuses (its sender may no longer send,
`system_contracts.refusal_of`) is dropped with the reason. Either way the sender's later
transactions in the batch wait too, so nonces stay in order. Every other transaction is
included with a receipt, whether it succeeded or reverted. A confidential transaction
(`evm_runtime.confidential`) executes with its visibility, and its logs stay out of the
header's bloom. Timestamps strictly increase.
The same parent, batch and block environment always give the same block hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth._utils.address import generate_contract_address
from eth.abc import BlockHeaderAPI, ReceiptAPI
from eth.vm.forks.byzantium.constants import (
    EIP658_TRANSACTION_STATUS_CODE_FAILURE,
    EIP658_TRANSACTION_STATUS_CODE_SUCCESS,
)
from eth_bloom import BloomFilter
from eth_utils import ValidationError

from .chain import MAX_EXTRA_DATA, VM, BlockState, ChainParams
from .confidential import transaction_visibility
from .state_db import NodeCache, StateOverlay
from .system_contracts import NO_RULES, BlockRules, block_rules_of, refusal_of
from .transactions import DecodedTransaction, effective_gas_price, transaction_type
from .trie_root import ordered_trie_root
from .types import Address, ExecutedTransaction, Hash32, LogRecord


@dataclass(frozen=True, slots=True)
class BlockEnv:
    """What the block producer chooses for a new block."""

    coinbase: Address
    timestamp: int
    extra_data: bytes = b""


@dataclass(frozen=True, slots=True)
class BuiltBlock:
    """A sealed block with everything storage needs to keep it."""

    header: BlockHeaderAPI
    transactions: tuple[ExecutedTransaction, ...]
    state_writes: dict[bytes, bytes]
    deferred: tuple[DecodedTransaction, ...]
    dropped: tuple[tuple[DecodedTransaction, str], ...]

    @property
    def hash(self) -> Hash32:
        return Hash32(self.header.hash)

    @property
    def number(self) -> int:
        return self.header.block_number


def rules_after(parent: BlockHeaderAPI, params: ChainParams, cache: NodeCache) -> BlockRules:
    """The rules the system contracts set, in `parent`'s state, for the block after it."""
    return block_rules_of(VM.build_state(StateOverlay(cache), parent, params.context, ()))


def child_header(
    parent: BlockHeaderAPI, params: ChainParams, env: BlockEnv, rules: BlockRules = NO_RULES
) -> BlockHeaderAPI:
    """The header template of the block after `parent`, before execution: the chain's gas
    limit unless `rules` set one, a base fee of zero if they make gas free."""
    header = VM.create_header_from_parent(
        parent,
        coinbase=env.coinbase,
        timestamp=max(env.timestamp, parent.timestamp + 1),
        gas_limit=rules.gas_limit or params.gas_limit,
        extra_data=env.extra_data[:MAX_EXTRA_DATA],
        mix_hash=parent.hash,
    )
    return header.copy(base_fee_per_gas=0) if rules.free_gas else header


def build_block(
    parent: BlockHeaderAPI,
    batch: Sequence[DecodedTransaction],
    params: ChainParams,
    env: BlockEnv,
    cache: NodeCache,
    ancestor_hashes: Iterable[Hash32],
) -> BuiltBlock:
    """Execute `batch` on `parent`'s state and seal the resulting block.

    `ancestor_hashes` are the hashes of `parent` and its ancestors, newest first (up to
    256), which the BLOCKHASH opcode reads.
    """
    header = child_header(parent, params, env, rules_after(parent, params, cache))
    overlay = StateOverlay(cache)
    context = VM.create_execution_context(header, tuple(ancestor_hashes), params.context)
    state = BlockState(overlay, context, header.state_root)

    included: list[ExecutedTransaction] = []
    receipts: list[ReceiptAPI] = []
    included_items: list[DecodedTransaction] = []
    deferred: list[DecodedTransaction] = []
    dropped: list[tuple[DecodedTransaction, str]] = []
    gas_used = 0
    bloom = BloomFilter()
    log_index = 0

    held_back: set[Address] = set()
    for item in batch:
        tx = item.tx
        if item.sender in held_back or gas_used + tx.gas > header.gas_limit:
            deferred.append(item)
            held_back.add(item.sender)
            continue
        refusal = refusal_of(state, item.sender, not tx.to)
        if refusal is not None:
            dropped.append((item, refusal))
            held_back.add(item.sender)
            continue
        state.lock_changes()
        snapshot = state.snapshot()
        visibility = transaction_visibility(state, item.sender, tx.to or None, item.private_for)
        state.visibility = visibility
        try:
            computation = state.apply_transaction(tx)
        except ValidationError as exc:
            state.revert(snapshot)
            dropped.append((item, str(exc)))
            held_back.add(item.sender)
            continue
        finally:
            state.visibility = None
        creators = visibility.creators
        private_for = None if creators is None else tuple(sorted(creators - {item.sender}))
        # What VM.make_receipt does, without copying the header for every transaction.
        gas_used += VM.finalize_gas_used(tx, computation)
        status = (
            EIP658_TRANSACTION_STATUS_CODE_FAILURE
            if computation.is_error
            else EIP658_TRANSACTION_STATUS_CODE_SUCCESS
        )
        receipt = tx.make_receipt(status, gas_used, computation.get_log_entries())
        if private_for is None:  # confidential logs stay out of the header's bloom
            bloom |= receipt.bloom
        receipts.append(receipt)
        included_items.append(item)
        logs = tuple(
            LogRecord(
                address=Address(entry.address),
                topics=tuple(topic.to_bytes(32, "big") for topic in entry.topics),
                data=entry.data,
                log_index=log_index + offset,
            )
            for offset, entry in enumerate(receipt.logs)
        )
        log_index += len(logs)
        is_create = not tx.to
        included.append(
            ExecutedTransaction(
                hash=Hash32(tx.hash),
                raw=item.raw,
                sender=item.sender,
                to=None if is_create else Address(tx.to),
                nonce=tx.nonce,
                index=len(included),
                tx_type=transaction_type(tx),
                status=0 if computation.is_error else 1,
                gas_used=gas_used - (included[-1].cumulative_gas_used if included else 0),
                cumulative_gas_used=gas_used,
                effective_gas_price=effective_gas_price(tx, header.base_fee_per_gas),
                contract_address=(
                    Address(generate_contract_address(item.sender, tx.nonce))
                    if is_create and not computation.is_error
                    else None
                ),
                logs=logs,
                logs_bloom=int(receipt.bloom).to_bytes(256, "big"),
                receipt_rlp=receipt.encode(),
                private_for=private_for,
                reached=tuple(visibility.reached),
            )
        )

    state.persist()
    transaction_root = ordered_trie_root([item.raw for item in included_items])
    receipt_root = ordered_trie_root([executed.receipt_rlp for executed in included])
    sealed = header.copy(
        state_root=state.state_root,
        transaction_root=transaction_root,
        receipt_root=receipt_root,
        bloom=int(bloom),
        gas_used=gas_used,
    )
    return BuiltBlock(
        header=sealed,
        transactions=tuple(included),
        state_writes=dict(overlay.writes),
        deferred=tuple(deferred),
        dropped=tuple(dropped),
    )
