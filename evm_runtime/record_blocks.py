"""Record blocks: blocks that change state without transactions, and say how.

A dev chain's state patch (`evm_runtime.state_patch`) and a recovered network's reopening
(`governance.reopening`) change state outside any transaction. Both are sealed as a block of
their own that stays verifiable:

- the block holds no transactions; its state is the parent's with the change applied;
- its `extraData` is the keccak hash of the change's canonical encoding (the *record*), and
  the record is stored with the block's state nodes under that hash (the node table is
  content-addressed, so the record is checked like every node);
- replaying the block is applying the record again, which must give the stored header.

Each kind of record opens with its own magic bytes, so no trie node, and no record of
another kind, can be taken for one.
"""

from __future__ import annotations

from collections.abc import Callable

from eth.abc import BlockHeaderAPI, StateAPI
from eth_hash.auto import keccak

from .block_builder import BlockEnv, BuiltBlock, child_header, rules_after
from .chain import VM, ChainParams
from .state_db import NodeCache, StateOverlay
from .trie_root import BLANK_ROOT
from .types import Address, Hash32


def record_hash(record: bytes) -> Hash32:
    return Hash32(keccak(record))


def build_record_block(
    parent: BlockHeaderAPI,
    record: bytes,
    apply: Callable[[StateAPI], None],
    params: ChainParams,
    coinbase: Address,
    timestamp: int,
    cache: NodeCache,
) -> BuiltBlock:
    """The block after `parent` whose state is `parent`'s changed by `apply`, which `record`
    describes; its state writes hold `record` under its hash, the block's `extraData`."""
    digest = record_hash(record)
    env = BlockEnv(coinbase=coinbase, timestamp=timestamp, extra_data=digest)
    header = child_header(parent, params, env, rules_after(parent, params, cache))
    overlay = StateOverlay(cache)
    state = VM.build_state(overlay, header, params.context, ())
    apply(state)
    state.persist()
    sealed = header.copy(
        state_root=state.state_root,
        transaction_root=BLANK_ROOT,
        receipt_root=BLANK_ROOT,
        bloom=0,
        gas_used=0,
    )
    writes = dict(overlay.writes)
    writes[digest] = record
    return BuiltBlock(header=sealed, transactions=(), state_writes=writes, deferred=(), dropped=())


def stored_record(header: BlockHeaderAPI, cache: NodeCache, magic: bytes) -> bytes | None:
    """The record of kind `magic` the block applied, if it is such a record block."""
    if len(header.extra_data) != 32:
        return None
    record = cache.get(header.extra_data)
    if record is None or not record.startswith(magic) or record_hash(record) != header.extra_data:
        return None
    return bytes(record)
