"""conclave_getTransactionProof: a receipt anyone can verify offline (`ledger.receipts`,
docs/receipts.md).

The answer holds the transaction and its receipt with their Merkle proofs into the
block's roots (made by the enclave, which alone opens the block's confidential
transactions), the block header, its commit certificate, the validators that decided it,
and the validator-set changes since genesis (a recovered network's reopenings among them,
with the evidence of the members' decision), so that a verifier who trusts an earlier set
follows governance to the block's. A confidential transaction is answered only to a
caller who may see it; anyone else gets null, as for a hash no block holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evm_runtime.chain import decode_header
from evm_runtime.types import Address, Hash32
from governance.system_contract import EVENT_TOPICS, GOVERNANCE_ADDRESS
from ledger.consensus.messages import decode_certificate
from ledger.receipts import ReopeningEvidence, ValidatorChange, VerifiableReceipt, receipt_to_json
from ledger.store import BlockRecord, LogQuery

from .. import params as p
from ..caller import current_token
from ..node import Node
from .consensus import _validators_deciding
from .registry import Param, rpc

LOG_PAGE = 10_000
"""Governance logs read at once while looking for validator-set changes."""
RESOLVED = EVENT_TOPICS["ProposalResolved"]


def verifiable_receipt(node: Node, tx_hash: bytes) -> VerifiableReceipt | None:
    """The receipt of the stored transaction `tx_hash` for the caller (`current_token()`);
    None if no block holds it or it is confidential and the caller may not see it."""
    proof = node.enclave.transaction_proof(Hash32(tx_hash), current_token())
    if proof is None:
        return None
    encoded = node.store.certificate(proof.block_number)
    return VerifiableReceipt(
        proof=proof,
        certificate=None if encoded is None else decode_certificate(encoded),
        validators=_validators_deciding(node, proof.block_number),
        changes=validator_changes(node, proof.block_number),
    )


def validator_changes(node: Node, before: int) -> tuple[ValidatorChange, ...]:
    """Each block before `before` after which governance named other validators than after
    the block before it, with its header, certificate and governance's proven state (and,
    for a reopening block, the evidence that links it to the chain before it).

    Finding them costs a few state reads, not one per block. An accepted proposal changes
    the validators at a block its `ProposalResolved` log names; between two such blocks the
    set changes only by a reopening (`governance.reopening`), which replaces the lost
    validators with new keys, never by the ones before. So each stretch between resolved
    proposals costs one more read, of the set at its end; if that differs from the set at
    its start, a binary search over the stretch finds the first block whose set differs
    (log2 of its length reads), and the rest of the stretch is searched again from there.
    A block found so is asked of the enclave for its reopening record only if its header's
    extraData is 32 bytes (a record block's: `evm_runtime.record_blocks`). The same search
    also finds a change voted by a confidential transaction, whose logs are not read, as
    long as the stretch does not end with the set it started with.
    """
    named = _named_sets(node)
    if not named(0):
        return ()
    numbers: list[int] = []
    start = 0
    for point in [*_resolving_blocks(node, before), before]:
        numbers.extend(_changes_within(named, start, point - 1))
        if point < before and named(point) != named(point - 1):
            numbers.append(point)
        start = point
    changes = (_change_at(node, number) for number in numbers)
    return tuple(change for change in changes if change is not None)


def _named_sets(node: Node) -> Callable[[int], frozenset[Address]]:
    """The validators governance names after a block, each block read once."""
    sets: dict[int, frozenset[Address]] = {}

    def named(number: int) -> frozenset[Address]:
        if number not in sets:
            sets[number] = frozenset(node.enclave.validators(number))
        return sets[number]

    return named


def _changes_within(named: Callable[[int], frozenset[Address]], start: int, end: int) -> list[int]:
    """The blocks in (start, end] whose validators differ from the block's before, for a
    stretch where sets do not come back (reopenings): binary searches, one per change."""
    found = []
    while start < end and named(end) != named(start):
        low, high = start + 1, end  # named(high) differs from named(start)
        while low < high:
            middle = (low + high) // 2
            if named(middle) != named(start):
                high = middle
            else:
                low = middle + 1
        found.append(low)
        start = low
    return found


def _change_at(node: Node, number: int) -> ValidatorChange | None:
    block, certificate = node.store.block_by_number(number), node.store.certificate(number)
    governance = node.enclave.governance_proof(number)
    if block is None or certificate is None or governance is None:
        return None
    return ValidatorChange(
        block.header, decode_certificate(certificate), governance, _reopening_evidence(node, block)
    )


def _reopening_evidence(node: Node, block: BlockRecord) -> ReopeningEvidence | None:
    """The record, parent header, parent certificate and governance's state at the parent of
    a reopening block; None for any other block (or a reopening of a parent with no
    certificate, such as the genesis block: only its own validators' certificate shows it)."""
    if len(decode_header(block.header).extra_data) != 32:
        return None
    record = node.enclave.reopening_record(block.number)
    if record is None:
        return None
    parent = block.number - 1
    parent_block, certificate = node.store.block_by_number(parent), node.store.certificate(parent)
    governance = node.enclave.governance_proof(parent)
    if parent_block is None or certificate is None or governance is None:
        return None
    return ReopeningEvidence(record, parent_block.header, decode_certificate(certificate), governance)


def _resolving_blocks(node: Node, before: int) -> list[int]:
    """The blocks before `before` that resolved a governance proposal (their
    ProposalResolved logs say so): only an accepted proposal changes the validators."""
    numbers: set[int] = set()
    first = 1
    while first < before:
        query = LogQuery(first, before - 1, (GOVERNANCE_ADDRESS,), ((RESOLVED,),))
        logs = node.store.logs(query, LOG_PAGE)
        numbers.update(log.block_number for log in logs)
        if len(logs) <= LOG_PAGE:
            break
        first = max(first + 1, logs[-1].block_number)  # the last block may be cut short: read it again
    return sorted(numbers)


@rpc("conclave_getTransactionProof", Param("hash", p.hash32))
def conclave_get_transaction_proof(node: Node, tx_hash: bytes) -> dict[str, Any] | None:
    """A receipt anyone can verify knowing a validator set (`conclave receipt verify`)."""
    receipt = verifiable_receipt(node, tx_hash)
    return None if receipt is None else receipt_to_json(receipt)
