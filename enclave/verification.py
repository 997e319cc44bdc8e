"""Offline verification of a stored ledger: every block re-derived from its parent.

The rules checked, block by block from genesis to the head:

- the blocks are numbered 0..head without a gap, each header hashes to the stored hash
  and names the previous block as its parent;
- the stored transactions, public ones and the sealed confidential ones (opened with the
  ledger secrets, `enclave.records`), decode, are signed for this chain by their stored
  senders, and their trie root is the header's transactions root;
- a record block (`evm_runtime.record_blocks`: a dev chain's state patch, or a recovered
  network's reopening, `governance.reopening`) holds no transactions, and applying its
  stored record to the parent's state gives exactly the stored header (a reopening's
  approvals and quotes checked as the node checked them);
- replaying the transactions on the parent's state, with the header's coinbase, time and
  gas limit, includes every one of them and gives exactly the stored header (state root,
  receipts root, bloom, gas used), hence the same hash;
- a stored commit certificate is a quorum of the validators governance named at the
  parent (of a reopening block: of those it installs);
- the stored receipts and logs are the replay's, and each confidential transaction's
  sealed record (receipt, logs, parties) is the replay's;
- every stored state node unseals with the node's ledger secrets for its key, and its
  plaintext hashes to its key (state is content-addressed, and stored sealed:
  `enclave.sealed_state`).

Replay reads state through a cache of its own, which unseals what it reads from the store
and is filled by the replay's own writes, so what it proves does not depend on what later
blocks stored. Verifying needs the ledger secrets that sealed the state: those of the
node's enclave (`sealed_state.node_ledger_secrets`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak

from evm_runtime.block_builder import BlockEnv, build_block
from evm_runtime.calls import state_at
from evm_runtime.chain import ChainParams, decode_header
from evm_runtime.exceptions import ConclaveError
from evm_runtime.state_db import NodeCache
from evm_runtime.state_patch import build_patch_block, stored_patch
from evm_runtime.system_contracts import read_only_stores
from evm_runtime.transactions import decode_signed_transaction
from evm_runtime.trie_root import BLANK_ROOT, ordered_trie_root
from evm_runtime.types import Address, ExecutedTransaction, Hash32, LogRecord
from governance.exceptions import InvalidAction
from governance.reopening import build_reopening_block, stored_reopening
from governance.system_contract import GOVERNANCE_ADDRESS, governance_state
from ledger.consensus.messages import MalformedMessage, decode_certificate, verify_certificate
from ledger.store import MAX_ANCESTORS, LedgerStore, StoredBlock, StoredLog, StoredReceipt

from .attestation import verify_validator_quote
from .records import open_record
from .sealed_state import SealedNodes, SealedStateUnreadable, unseal_node
from .sealing import LedgerSecrets, UnsealError

HEADER_FIELDS = ("state_root", "transaction_root", "receipt_root", "bloom", "gas_used", "base_fee_per_gas")
SECRETS_SAMPLE = 16


@dataclass(frozen=True, slots=True)
class Discrepancy:
    block: int | None
    """The block where the problem is; None for the state node store."""
    problem: str


@dataclass
class VerificationReport:
    head: int = -1
    blocks: int = 0
    certified: int = 0
    """Blocks whose commit certificate is a quorum of their validators."""
    transactions: int = 0
    state_nodes: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.head >= 0 and not self.discrepancies


class _Stop(Exception):
    """Verification cannot go past this block."""


def verify_ledger(
    store: LedgerStore,
    chain_id: int,
    secrets: LedgerSecrets,
    *,
    on_block: Callable[[int, int], None] | None = None,
    max_discrepancies: int = 100,
) -> VerificationReport:
    """Check the stored chain from genesis to its head, unsealing its state with `secrets`;
    `on_block(number, head)` reports progress.

    SealedStateUnreadable if `secrets` are not the ones that sealed the ledger's state (none
    of its first stored nodes unseals): nothing could be checked."""
    report = VerificationReport()
    stored_head = store.head()
    if stored_head is None:
        report.discrepancies.append(Discrepancy(0, "the ledger has no genesis block"))
        return report
    check_ledger_secrets(store, secrets)
    report.head = stored_head.number
    cache = NodeCache(SealedNodes(store, lambda: secrets))
    ancestors: deque[Hash32] = deque(maxlen=MAX_ANCESTORS)
    parent: BlockHeaderAPI | None = None
    for number in range(stored_head.number + 1):
        problems: list[str] = []
        try:
            parent = _verify_block(
                store, chain_id, secrets, number, parent, cache, ancestors, problems, report
            )
        except _Stop as stop:
            problems.append(str(stop))
            parent = None
        except SealedStateUnreadable as unreadable:
            problems.append(f"the stored state cannot be read: {unreadable}")
            parent = None
        report.discrepancies.extend(Discrepancy(number, problem) for problem in problems)
        if on_block is not None:
            on_block(number, stored_head.number)
        if parent is None or len(report.discrepancies) >= max_discrepancies:
            break
    for key, blob in store.state_nodes():
        report.state_nodes += 1
        problem = _node_problem(secrets, key, blob)
        if problem is not None:
            report.discrepancies.append(Discrepancy(None, problem))
            if len(report.discrepancies) >= max_discrepancies:
                break
    return report


def check_ledger_secrets(store: LedgerStore, secrets: LedgerSecrets) -> None:
    """SealedStateUnreadable unless one of the first stored state nodes unseals with
    `secrets` (or none is stored): a quick check that they are the ledger's."""
    nodes = store.state_nodes(page=SECRETS_SAMPLE)
    sample = [next(nodes, None) for _ in range(SECRETS_SAMPLE)]
    nodes.close()
    stored = [node for node in sample if node is not None]
    if stored and all(_node_problem(secrets, key, blob) is not None for key, blob in stored):
        raise SealedStateUnreadable(
            f"none of the first {len(stored)} stored state nodes unseals with these ledger secrets: "
            "they are not the secrets of the enclave that sealed this ledger (or every node was "
            "altered). Verify with the node's own enclave directory (a backup is restored together "
            "with it)"
        )


def _node_problem(secrets: LedgerSecrets, key: bytes, blob: bytes) -> str | None:
    """What is wrong with the state node stored under `key`, or None."""
    try:
        value = unseal_node(secrets, key, blob)
    except SealedStateUnreadable:
        return f"state node {key.hex()} does not unseal with the node's ledger secrets"
    if keccak(value) != key:
        return f"state node {key.hex()} does not hash to its key"
    return None


def _verify_block(
    store: LedgerStore,
    chain_id: int,
    secrets: LedgerSecrets,
    number: int,
    parent: BlockHeaderAPI | None,
    cache: NodeCache,
    ancestors: deque[Hash32],
    problems: list[str],
    report: VerificationReport,
) -> BlockHeaderAPI | None:
    """Check block `number` against `parent`; its header, or None if the chain breaks here."""
    block = store.block_by_number(number)
    if block is None:
        raise _Stop(f"block {number} is missing below the head")
    header = _check_header(block, parent, problems)
    report.blocks += 1
    if parent is None:
        if cache.get(header.state_root) is None and header.state_root != BLANK_ROOT:
            problems.append("the genesis state is not stored")
        ancestors.append(block.hash)
        return header
    stored = [
        (tx.transaction_index, tx.hash, tx.sender, tx.raw, None) for tx in store.transactions_of_block(number)
    ]
    opened: dict[bytes, ExecutedTransaction] = {}
    for row in store.sealed_transactions(number, number):
        try:
            record = open_record(secrets, row)
        except (UnsealError, ValueError) as exc:
            raise _Stop(f"confidential transaction {row.hash.hex()} does not open: {exc}") from None
        opened[row.hash] = record
        stored.append((row.transaction_index, row.hash, record.sender, record.raw, record.private_for))
    stored.sort(key=lambda entry: entry[0])
    report.transactions += len(stored)
    if len(stored) != block.transaction_count:
        problems.append(f"{len(stored)} transactions stored, the block counts {block.transaction_count}")
    if ordered_trie_root([raw for _, _, _, raw, _ in stored]) != header.transaction_root:
        problems.append("the stored transactions do not give the header's transactions root")
    decoded = []
    for _, tx_hash, sender, raw, private_for in stored:
        try:
            item = decode_signed_transaction(raw, chain_id)
        except ConclaveError as exc:
            raise _Stop(f"transaction {tx_hash.hex()} does not decode: {exc}") from None
        if item.sender != sender or item.hash != tx_hash:
            problems.append(f"transaction {tx_hash.hex()}: stored sender or hash differ from its signature")
        decoded.append(replace(item, private_for=private_for))
    params = ChainParams(chain_id=chain_id, gas_limit=header.gas_limit)
    patch, reopening = stored_patch(header, cache), stored_reopening(header, cache)
    installs: tuple[Address, ...] = ()
    if (patch is not None or reopening is not None) and decoded:
        problems.append("a record block (a state patch or a reopening) holds transactions")
    if patch is not None:
        built = build_patch_block(parent, patch, params, header.coinbase, header.timestamp, cache)
    elif reopening is not None:
        try:
            built, installs = build_reopening_block(
                parent, reopening, params, header.coinbase, header.timestamp, cache, verify_validator_quote
            )
        except InvalidAction as refused:
            raise _Stop(f"block {number} does not reopen the network: {refused}") from None
    else:
        env = BlockEnv(coinbase=header.coinbase, timestamp=header.timestamp, extra_data=header.extra_data)
        built = build_block(parent, decoded, params, env, cache, reversed(ancestors))
    if built.deferred or built.dropped:
        left_out = len(built.deferred) + len(built.dropped)
        problems.append(f"{left_out} stored transactions would not be included on replay")
    if built.hash != block.hash:
        differing = [name for name in HEADER_FIELDS if getattr(built.header, name) != getattr(header, name)]
        problems.append(f"replay gives another block: {', '.join(differing) or 'header'} differ")
    receipts, logs = store.receipts_of_block(number), store.logs_of_block(number)
    public = [executed for executed in built.transactions if executed.hash not in opened]
    problems.extend(_receipt_problems(tuple(public), receipts, logs))
    for executed in built.transactions:
        record = opened.get(executed.hash)
        if record is not None and record != executed:
            problems.append(
                f"the sealed record of confidential transaction {executed.hash.hex()} differs from the replay"
            )
    _check_certificate(store, block, installs or _validators_at(parent, chain_id, cache), problems, report)
    cache.absorb(built.state_writes)
    ancestors.append(block.hash)
    return header


def _validators_at(parent: BlockHeaderAPI, chain_id: int, cache: NodeCache) -> tuple[Address, ...]:
    """The validators governance names in `parent`'s state (none without governance)."""
    params = ChainParams(chain_id=chain_id, gas_limit=parent.gas_limit)
    governance = governance_state(read_only_stores(state_at(parent, params, cache))[GOVERNANCE_ADDRESS])
    return () if governance is None else tuple(governance.validators)


def _check_certificate(
    store: LedgerStore,
    block: StoredBlock,
    validators: tuple[Address, ...],
    problems: list[str],
    report: VerificationReport,
) -> None:
    """A stored certificate must be a quorum of `validators`: those governance named at the
    parent, or those a reopening block installs (blocks stored before certificates were
    kept have none, and a ledger without governance no validators)."""
    encoded = store.certificate(block.number)
    if encoded is None or not validators:
        return
    try:
        certificate = decode_certificate(encoded)
    except MalformedMessage as exc:
        problems.append(f"the commit certificate does not decode: {exc}")
        return
    if verify_certificate(block.hash, certificate, validators):
        report.certified += 1
    else:
        problems.append("the commit certificate is not a quorum of the block's validators")


def _check_header(block: StoredBlock, parent: BlockHeaderAPI | None, problems: list[str]) -> BlockHeaderAPI:
    try:
        header = decode_header(block.header)
    except Exception as exc:  # any undecodable header stops the check here
        raise _Stop(f"the stored header does not decode: {exc}") from None
    if header.hash != block.hash:
        problems.append("the header does not hash to the stored block hash")
    if header.block_number != block.number or header.timestamp != block.timestamp:
        problems.append("the header's number or timestamp differ from the stored ones")
    expected_parent = bytes(32) if parent is None else parent.hash
    if block.parent_hash != expected_parent or header.parent_hash != expected_parent:
        raise _Stop("the block does not link to the previous block")
    return header


def _receipt_problems(
    replayed: tuple[ExecutedTransaction, ...], receipts: list[StoredReceipt], logs: list[StoredLog]
) -> Iterator[str]:
    if len(receipts) != len(replayed):
        yield f"{len(receipts)} receipts stored for {len(replayed)} transactions"
        return
    logs_by_tx: dict[bytes, list[StoredLog]] = {}
    for entry in logs:
        logs_by_tx.setdefault(entry.transaction_hash, []).append(entry)
    for executed, receipt in zip(replayed, receipts, strict=True):
        facts = (
            receipt.transaction_hash,
            receipt.transaction_index,
            receipt.status,
            receipt.gas_used,
            receipt.cumulative_gas_used,
            receipt.contract_address,
        )
        expected = (
            executed.hash,
            executed.index,
            executed.status,
            executed.gas_used,
            executed.cumulative_gas_used,
            executed.contract_address,
        )
        if facts != expected:
            yield f"the receipt of {executed.hash.hex()} differs from the replay"
        stored_logs = [_log_facts(entry) for entry in logs_by_tx.get(executed.hash, [])]
        if stored_logs != [_log_facts(entry) for entry in executed.logs]:
            yield f"the logs of {executed.hash.hex()} differ from the replay"


def _log_facts(entry: StoredLog | LogRecord) -> tuple[int, bytes, tuple[bytes, ...], bytes]:
    return entry.log_index, entry.address, entry.topics, entry.data
