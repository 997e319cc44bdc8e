"""conclave_getTransactionProof: a receipt anyone can verify offline (`ledger.receipts`,
docs/receipts.md).

The answer holds the transaction and its receipt with their Merkle proofs into the
block's roots (made by the enclave, which alone opens the block's confidential
transactions), the block header, its commit certificate, the validators that decided it,
and the validator-set changes since genesis, so that a verifier who trusts an earlier set
follows governance to the block's. A confidential transaction is answered only to a
caller who may see it; anyone else gets null, as for a hash no block holds.
"""

from __future__ import annotations

from typing import Any

from evm_runtime.types import Hash32
from governance.system_contract import EVENT_TOPICS, GOVERNANCE_ADDRESS
from ledger.consensus.messages import decode_certificate
from ledger.receipts import ValidatorChange, VerifiableReceipt, receipt_to_json
from ledger.store import LogQuery

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
    the block before it, with its header, certificate and governance's proven state."""
    current = frozenset(node.enclave.validators(0))
    if not current:
        return ()
    changes = []
    for number in _resolving_blocks(node, before):
        named = frozenset(node.enclave.validators(number))
        if named == current:
            continue
        current = named
        block, certificate = node.store.block_by_number(number), node.store.certificate(number)
        governance = node.enclave.governance_proof(number)
        if block is not None and certificate is not None and governance is not None:
            changes.append(ValidatorChange(block.header, decode_certificate(certificate), governance))
    return tuple(changes)


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
