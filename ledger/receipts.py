"""Receipts anyone can verify: a transaction, its receipt, and the proof that both are final.

A `VerifiableReceipt` holds:

- the transaction's EIP-2718 encoding, its receipt's, its index in the block, and their
  Merkle proofs into the header's transactions and receipts roots
  (`evm_runtime.receipt_proofs`): the `TransactionProof` the enclave makes, since a
  block's roots cover its confidential transactions too;
- the block's header (RLP; its keccak is the block hash) and its commit certificate (a
  quorum of validator seals over the block hash and round, `ledger.consensus.messages`);
- the validators that decided the block, as the node tells them (informative: the
  verifier finds them itself);
- the validator-set changes before the block (`ValidatorChange`): each block after which
  governance named other validators, with its header, its certificate, and governance's
  state proven from its state root; a *reopening block* (a recovered network's members
  named new validators, `governance.reopening`, docs/recovery.md) also carries the
  evidence of their decision (`ReopeningEvidence`).

`verify_receipt(receipt, trusted, governance)` needs nothing but a validator set the
verifier trusts. The rules:

1. the transaction hashes to the transaction hash; the header hashes to the block hash
   and has the block number;
2. the transaction is at `rlp(index)` of the transactions root, the receipt at the same
   key of the receipts root; each proof is exactly the path there;
3. the validators that decided the block are found from the trusted set by following
   the changes in chain order: a change whose certificate is a quorum of the current set
   makes the set it proves (governance's validators after that block) the current one;
   a change the current set did not certify is passed over (it is before the point the
   verifier trusts, or not certified at all), unless it is a reopening the current set
   leads to (below);
4. the block's certificate is a quorum of distinct members of the set so found.

A reopening block is certified by the validators it installs, not by those before it (their
keys are lost), so its evidence links it to the trusted chain instead. Its evidence must
hold together, whatever the trusted set: the record hashes to the block's `extraData`, the
parent header to its `parentHash` and is the block the record names, governance's state at
the parent is proven from the parent's state root, distinct members at the parent, at
least its recovery threshold, signed the record's approval digest (and no one else did),
the block's certificate is a quorum of the validators the record's quotes name, and
governance's proven state after the block names exactly those. Then the change moves the
current set to the installed validators if the parent is certified by the current set
(or is the change block followed just before); a reopening whose parent the current set
did not certify is passed over like any change it did not certify.

So a receipt verifies against the validators of its own block, or against any earlier
set (genesis's, say) from which its changes lead there, across reopenings too. What the
ledger does not know, governance's address, slot and encoding, a reopening record's
encoding and a quote's address, is handed in (`GovernanceLayout`).

`receipt_to_json` / `receipt_from_json` give its JSON form (docs/receipts.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from evm_runtime.chain import decode_header
from evm_runtime.exceptions import ConclaveError
from evm_runtime.receipt_proofs import InvalidProof, proven_storage, verify_index
from evm_runtime.signatures import InvalidSignature, recover_signer
from evm_runtime.transactions import decode_recovered, decode_signed_transaction
from evm_runtime.types import ZERO_ADDRESS, Address, Hash32

from .consensus.messages import CommitCertificate, certificate_signers, quorum, verify_certificate

FORMAT = "conclave-receipt/1"
"""The `format` of a receipt's JSON form."""
MAX_CHANGES = 10_000
"""The most validator-set changes a receipt may carry."""


class InvalidReceipt(ValueError):
    """A receipt that does not verify, or is not a receipt; the message says why."""


# ----------------------------------------------------------------------------------------
# What a receipt holds
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransactionProof:
    """A stored transaction and its receipt, proven into their block's roots (the enclave
    makes it: the roots cover the block's confidential transactions too)."""

    transaction_hash: Hash32
    transaction: bytes
    """The EIP-2718 encoding (legacy: the RLP list), as the transactions root holds it."""
    receipt: bytes
    """The EIP-2718 receipt encoding, as the receipts root holds it."""
    index: int
    transaction_proof: tuple[bytes, ...]
    receipt_proof: tuple[bytes, ...]
    block_number: int
    block_hash: Hash32
    header: bytes
    """The block's RLP header: its keccak is `block_hash`."""


@dataclass(frozen=True, slots=True)
class GovernanceProof:
    """Governance's state after a block, with the EIP-1186 proofs of the storage slot that
    holds its hash, from the block's state root."""

    account_proof: tuple[bytes, ...]
    storage_proof: tuple[bytes, ...]
    state: bytes
    """Governance's encoded state: its keccak is the value of the slot."""


@dataclass(frozen=True, slots=True)
class ReopeningEvidence:
    """What links a reopening block (`governance.reopening`) to the chain before it: the
    members' approved record, the parent block, its certificate by the validators before,
    and governance's state at the parent (its members and recovery threshold)."""

    record: bytes
    """The approved reopening (`ApprovedReopening.encode()`): its keccak is the block's extraData."""
    parent_header: bytes
    """The parent's RLP header: its keccak is the block's parentHash."""
    parent_certificate: CommitCertificate
    parent_governance: GovernanceProof
    """Governance's state after the parent, proven from the parent's state root."""


@dataclass(frozen=True, slots=True)
class ValidatorChange:
    """A block after which governance named other validators, certified by those before
    (a reopening block: by those it installs, with `reopening` linking it to those before)."""

    header: bytes
    certificate: CommitCertificate
    governance: GovernanceProof
    """Governance's state after the block, proven from its state root."""
    reopening: ReopeningEvidence | None = None


@dataclass(frozen=True, slots=True)
class ReopeningTerms:
    """What a reopening record says, as the verifier needs it (`GovernanceLayout.reopening`
    reads it from the record)."""

    parent_number: int
    parent_hash: bytes
    approval_digest: bytes
    """What each approving member signed (a 32-byte hash)."""
    approvals: tuple[bytes, ...]
    """The members' signatures over `approval_digest` (65 bytes r ‖ s ‖ v, v 0 or 1)."""
    quotes: tuple[bytes, ...]
    """The attestation quotes of the validators it installs."""


@dataclass(frozen=True, slots=True)
class VerifiableReceipt:
    proof: TransactionProof
    certificate: CommitCertificate | None
    validators: tuple[Address, ...]
    """The validators that decided the block, as the node says (the verifier finds them)."""
    changes: tuple[ValidatorChange, ...] = ()


@dataclass(frozen=True, slots=True)
class GovernanceLayout:
    """Where governance keeps its state, and how its validators are read from it."""

    address: Address
    """The governance contract."""
    slot: int
    """The storage slot that holds keccak(state)."""
    validators: Callable[[bytes], Collection[Address]]
    """The validators an encoded state names (raising ValueError or ConclaveError for bytes
    that are not one)."""
    recovery: Callable[[bytes], tuple[Collection[Address], int]] | None = None
    """The members an encoded state names and how many of them reopen the network (its
    recovery threshold); None: reopenings are not followed. The three callables below raise
    ValueError or ConclaveError for bytes they cannot read."""
    reopening: Callable[[bytes], ReopeningTerms] | None = None
    """What a reopening record says."""
    quote_address: Callable[[bytes], Address] | None = None
    """The validator address an attestation quote names (its node key's address)."""


@dataclass(frozen=True, slots=True)
class ReceiptLog:
    address: Address
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a receipt that verified shows."""

    transaction_hash: Hash32
    block_number: int
    block_hash: Hash32
    timestamp: int
    index: int
    chain_id: int
    sender: Address
    to: Address | None
    """None: a contract creation (its address is `contract_address`)."""
    contract_address: Address | None
    nonce: int
    value: int
    transaction_type: int
    status: int
    cumulative_gas_used: int
    logs: tuple[ReceiptLog, ...]
    validators: frozenset[Address]
    """The set that decided the block, as found from the trusted one."""
    signers: frozenset[Address]
    changes_followed: int
    """How many validator-set changes led from the trusted set to `validators`."""
    reopenings_followed: int = 0
    """How many of them were reopenings the trusted chain led to through their evidence."""


# ----------------------------------------------------------------------------------------
# Verifying
# ----------------------------------------------------------------------------------------


def verify_receipt(
    receipt: VerifiableReceipt, trusted: Collection[Address], governance: GovernanceLayout | None = None
) -> VerifiedReceipt:
    """What `receipt` proves, if it verifies against the `trusted` validators (rules in the
    module docstring); InvalidReceipt saying why not."""
    if not trusted:
        raise InvalidReceipt("no trusted validators: name the validator set to verify against")
    proof = receipt.proof
    if keccak(proof.transaction) != proof.transaction_hash:
        raise InvalidReceipt("the transaction does not hash to the receipt's transaction hash")
    header = _header(proof.header, proof.block_hash, proof.block_number)
    where = f"block {proof.block_number} at index {proof.index}"
    try:
        verify_index(header.transaction_root, proof.index, proof.transaction, proof.transaction_proof)
    except InvalidProof as failed:
        raise InvalidReceipt(f"the transaction is not proven in {where}: {failed}") from None
    try:
        verify_index(header.receipt_root, proof.index, proof.receipt, proof.receipt_proof)
    except InvalidProof as failed:
        raise InvalidReceipt(f"the receipt is not proven in {where}: {failed}") from None
    if receipt.certificate is None:
        raise InvalidReceipt(f"the receipt carries no commit certificate for block {proof.block_number}")
    walk = _deciding_validators(receipt, frozenset(trusted), governance)
    validators, followed = walk.validators, walk.followed
    signers = certificate_signers(proof.block_hash, receipt.certificate, validators)
    if signers is None or len(signers) < quorum(len(validators)):
        who = (
            f"the validators {followed} validator-set change(s) lead to from the trusted ones"
            if followed
            else "the trusted validators"
        )
        passed = "".join(
            f"; the reopening at block {number} was passed over: its parent's certificate is not a "
            "quorum of the validators before it"
            for number in walk.reopenings_passed
        )
        raise InvalidReceipt(
            f"block {proof.block_number}'s commit certificate is not a quorum of {who}: it needs "
            f"⌈2n/3⌉ seals, distinct validators' signatures over the block hash and round{passed}"
        )
    return replace(
        _verified(proof, header, validators, signers, followed), reopenings_followed=walk.reopenings
    )


def _header(encoded: bytes, block_hash: bytes | None, number: int | None) -> BlockHeaderAPI:
    if block_hash is not None and keccak(encoded) != block_hash:
        raise InvalidReceipt("the header does not hash to the block hash")
    try:
        header = decode_header(encoded)
    except (rlp.DecodingError, rlp.DeserializationError, ValueError) as malformed:
        raise InvalidReceipt(f"the header does not decode: {malformed}") from None
    if number is not None and header.block_number != number:
        raise InvalidReceipt(f"the header is of block {header.block_number}, not {number}")
    return header


@dataclass(frozen=True, slots=True)
class _Walk:
    validators: frozenset[Address]
    followed: int
    reopenings: int
    reopenings_passed: tuple[int, ...]


def _deciding_validators(
    receipt: VerifiableReceipt, trusted: frozenset[Address], governance: GovernanceLayout | None
) -> _Walk:
    """The validators the changes lead to from `trusted`, and how many changes (and
    reopenings) were followed."""
    current, followed, reopenings, previous = trusted, 0, 0, -1
    passed: list[int] = []
    last_followed: bytes | None = None
    """The hash of the change block followed last: its certificate was checked already."""
    for change in receipt.changes:
        header = _header(change.header, None, None)
        number = header.block_number
        if not previous < number < receipt.proof.block_number:
            raise InvalidReceipt("the validator-set changes are not in chain order before the block")
        previous = number
        block_hash = keccak(change.header)
        installed: frozenset[Address] | None = None
        if change.reopening is not None:
            installed = _reopened(number, header, change, _layout(governance, reopening=True))
        if verify_certificate(block_hash, change.certificate, current):
            current = _validators_after(number, header, change.governance, _layout(governance))
        elif installed is not None and change.reopening is not None:
            parent_hash = bytes(header.parent_hash)  # the evidence's parent header hashes to it
            if parent_hash != last_followed and not verify_certificate(
                parent_hash, change.reopening.parent_certificate, current
            ):
                passed.append(number)
                continue
            current = installed
            reopenings += 1
        else:
            continue
        followed += 1
        last_followed = block_hash
    return _Walk(current, followed, reopenings, tuple(passed))


def _layout(governance: GovernanceLayout | None, *, reopening: bool = False) -> GovernanceLayout:
    if governance is None:
        raise InvalidReceipt("following validator-set changes needs governance's layout")
    if reopening and (
        governance.recovery is None or governance.reopening is None or governance.quote_address is None
    ):
        raise InvalidReceipt("following a reopening needs governance's layout of reopenings")
    return governance


def _reopened(
    number: int, header: BlockHeaderAPI, change: ValidatorChange, governance: GovernanceLayout
) -> frozenset[Address]:
    """The validators reopening block `number` installs, if its evidence holds together (all
    but the parent's certificate, which the caller checks against the current set);
    InvalidReceipt saying which part does not."""
    evidence = change.reopening
    assert evidence is not None
    assert governance.recovery and governance.reopening and governance.quote_address
    where = f"the reopening at block {number}"
    if keccak(evidence.record) != bytes(header.extra_data):
        raise InvalidReceipt(f"{where}: its record does not hash to the block's extraData")
    if keccak(evidence.parent_header) != bytes(header.parent_hash):
        raise InvalidReceipt(f"{where}: the parent header does not hash to the block's parentHash")
    parent = _header(evidence.parent_header, None, number - 1)
    try:
        terms = governance.reopening(evidence.record)
        members_at_parent, threshold = governance.recovery(
            _proven_state(number - 1, parent, evidence.parent_governance, governance)
        )
        installed = [Address(governance.quote_address(quote)) for quote in terms.quotes]
    except (ValueError, ConclaveError) as malformed:
        if isinstance(malformed, InvalidReceipt):
            raise
        raise InvalidReceipt(f"{where}: its evidence does not decode: {malformed}") from None
    if (terms.parent_number, bytes(terms.parent_hash)) != (number - 1, keccak(evidence.parent_header)):
        raise InvalidReceipt(f"{where}: its record follows another block than its parent")
    members = frozenset(members_at_parent)
    signers = set()
    for signature in terms.approvals:
        signer = _approver(terms.approval_digest, signature)
        if signer is None:
            raise InvalidReceipt(f"{where}: an approval is not a signature over the approval digest")
        if signer not in members:
            raise InvalidReceipt(f"{where}: 0x{signer.hex()}, not a member at its parent, approved it")
        signers.add(signer)
    if len(signers) < max(threshold, 1):
        raise InvalidReceipt(
            f"{where}: {len(signers)} of the {max(threshold, 1)} members' approvals a reopening needs"
        )
    if not installed or len(set(installed)) != len(installed):
        raise InvalidReceipt(f"{where}: its record names no validator, or one twice")
    named = frozenset(installed)
    if not verify_certificate(keccak(change.header), change.certificate, named):
        raise InvalidReceipt(f"{where}: its certificate is not a quorum of the validators it installs")
    if _validators_after(number, header, change.governance, governance) != named:
        raise InvalidReceipt(f"{where}: governance after it names other validators than its record")
    return named


def _approver(digest: bytes, signature: bytes) -> Address | None:
    """Who signed the 32-byte `digest`; None if it is not a signature."""
    try:
        return recover_signer(digest, signature)
    except InvalidSignature:
        return None


def _validators_after(
    number: int, header: BlockHeaderAPI, proof: GovernanceProof, governance: GovernanceLayout
) -> frozenset[Address]:
    _proven_state(number, header, proof, governance)
    try:
        named = frozenset(governance.validators(proof.state))
    except (ValueError, ConclaveError) as malformed:
        raise InvalidReceipt(
            f"governance's state after block {number} does not decode: {malformed}"
        ) from None
    if not named:
        raise InvalidReceipt(f"governance names no validators after block {number}")
    return named


def _proven_state(
    number: int, header: BlockHeaderAPI, proof: GovernanceProof, governance: GovernanceLayout
) -> bytes:
    """Governance's encoded state after block `number`, once `proof` proves it from the
    block's state root."""
    try:
        digest = proven_storage(
            header.state_root, governance.address, governance.slot, proof.account_proof, proof.storage_proof
        )
    except InvalidProof as failed:
        raise InvalidReceipt(f"governance's state after block {number} is not proven: {failed}") from None
    if keccak(proof.state) != digest.to_bytes(32, "big"):
        raise InvalidReceipt(f"governance's state after block {number} is not the one its state root holds")
    return proof.state


def _verified(
    proof: TransactionProof,
    header: BlockHeaderAPI,
    validators: frozenset[Address],
    signers: frozenset[Address],
    followed: int,
) -> VerifiedReceipt:
    try:
        chain_id = decode_recovered(proof.transaction, ZERO_ADDRESS).tx.chain_id
        decoded = decode_signed_transaction(proof.transaction, chain_id)
    except (ConclaveError, rlp.DecodingError, rlp.DeserializationError, ValueError) as malformed:
        raise InvalidReceipt(f"the transaction does not decode: {malformed}") from None
    status, cumulative_gas, logs = _receipt_fields(proof.receipt)
    tx = decoded.tx
    to = Address(bytes(tx.to)) if tx.to else None
    return VerifiedReceipt(
        transaction_hash=proof.transaction_hash,
        block_number=proof.block_number,
        block_hash=proof.block_hash,
        timestamp=header.timestamp,
        index=proof.index,
        chain_id=chain_id,
        sender=decoded.sender,
        to=to,
        contract_address=None if to else Address(keccak(rlp.encode([decoded.sender, tx.nonce]))[12:]),
        nonce=tx.nonce,
        value=tx.value,
        transaction_type=proof.transaction[0] if proof.transaction[0] < 0x80 else 0,
        status=status,
        cumulative_gas_used=cumulative_gas,
        logs=logs,
        validators=validators,
        signers=signers,
        changes_followed=followed,
    )


def _receipt_fields(encoded: bytes) -> tuple[int, int, tuple[ReceiptLog, ...]]:
    """Status, cumulative gas and logs of an EIP-2718 receipt encoding."""
    try:
        fields = rlp.decode(encoded[1:] if encoded and encoded[0] < 0x80 else encoded)
        status, cumulative_gas, _bloom, logs = fields
        return (
            int.from_bytes(status, "big"),
            int.from_bytes(cumulative_gas, "big"),
            tuple(ReceiptLog(Address(address), tuple(topics), data) for address, topics, data in logs),
        )
    except (rlp.DecodingError, ValueError, TypeError) as malformed:
        raise InvalidReceipt(f"the receipt does not decode: {malformed}") from None


# ----------------------------------------------------------------------------------------
# The JSON form
# ----------------------------------------------------------------------------------------


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _certificate_json(certificate: CommitCertificate) -> dict[str, Any]:
    return {"round": hex(certificate.round), "seals": [_hex(seal) for seal in certificate.seals]}


def receipt_to_json(receipt: VerifiableReceipt) -> dict[str, Any]:
    """The receipt as JSON: hex bytes and quantities, checksummed addresses."""
    proof = receipt.proof
    return {
        "format": FORMAT,
        "transactionHash": _hex(proof.transaction_hash),
        "transaction": _hex(proof.transaction),
        "receipt": _hex(proof.receipt),
        "transactionIndex": hex(proof.index),
        "transactionProof": [_hex(node) for node in proof.transaction_proof],
        "receiptProof": [_hex(node) for node in proof.receipt_proof],
        "blockNumber": hex(proof.block_number),
        "blockHash": _hex(proof.block_hash),
        "header": _hex(proof.header),
        "certificate": None if receipt.certificate is None else _certificate_json(receipt.certificate),
        "validators": [to_checksum_address(validator) for validator in receipt.validators],
        "validatorChanges": [
            {
                "blockNumber": hex(decode_header(change.header).block_number),
                "blockHash": _hex(keccak(change.header)),
                "header": _hex(change.header),
                "certificate": _certificate_json(change.certificate),
                "accountProof": [_hex(node) for node in change.governance.account_proof],
                "storageProof": [_hex(node) for node in change.governance.storage_proof],
                "governanceState": _hex(change.governance.state),
                "reopening": None if change.reopening is None else _reopening_json(change.reopening),
            }
            for change in receipt.changes
        ],
    }


def _reopening_json(evidence: ReopeningEvidence) -> dict[str, Any]:
    return {
        "record": _hex(evidence.record),
        "parentHeader": _hex(evidence.parent_header),
        "parentCertificate": _certificate_json(evidence.parent_certificate),
        "parentAccountProof": [_hex(node) for node in evidence.parent_governance.account_proof],
        "parentStorageProof": [_hex(node) for node in evidence.parent_governance.storage_proof],
        "parentGovernanceState": _hex(evidence.parent_governance.state),
    }


def receipt_from_json(document: Any) -> VerifiableReceipt:
    """The receipt a JSON document holds; InvalidReceipt if it is not one (whether it
    verifies is `verify_receipt`'s question)."""
    try:
        return _receipt_of(document)
    except (KeyError, TypeError, ValueError) as malformed:
        if isinstance(malformed, InvalidReceipt):
            raise
        detail = f"no {malformed}" if isinstance(malformed, KeyError) else str(malformed)
        raise InvalidReceipt(f"not a Conclave receipt: {detail}") from None


def _receipt_of(document: Any) -> VerifiableReceipt:
    if not isinstance(document, Mapping):
        raise InvalidReceipt("not a Conclave receipt: a receipt is a JSON object")
    if document.get("format") != FORMAT:
        raise InvalidReceipt(f'not a Conclave receipt: its "format" is not "{FORMAT}"')
    proof = TransactionProof(
        transaction_hash=Hash32(_bytes(document, "transactionHash", 32)),
        transaction=_bytes(document, "transaction"),
        receipt=_bytes(document, "receipt"),
        index=_quantity(document, "transactionIndex"),
        transaction_proof=_nodes(document, "transactionProof"),
        receipt_proof=_nodes(document, "receiptProof"),
        block_number=_quantity(document, "blockNumber"),
        block_hash=Hash32(_bytes(document, "blockHash", 32)),
        header=_bytes(document, "header"),
    )
    certificate = document["certificate"]
    changes = _list(document, "validatorChanges")
    if len(changes) > MAX_CHANGES:
        raise InvalidReceipt(f"a receipt carries at most {MAX_CHANGES:,} validator-set changes")
    return VerifiableReceipt(
        proof=proof,
        certificate=None if certificate is None else _certificate(certificate),
        validators=tuple(Address(_hex_bytes(v, "validators", 20)) for v in _list(document, "validators")),
        changes=tuple(_change(change) for change in changes),
    )


def _change(item: Any) -> ValidatorChange:
    if not isinstance(item, Mapping):
        raise InvalidReceipt("not a Conclave receipt: a validator-set change is a JSON object")
    header = _bytes(item, "header")
    if keccak(header) != _bytes(item, "blockHash", 32):
        raise InvalidReceipt("not a Conclave receipt: a validator-set change's header is not its block's")
    if _header(header, None, None).block_number != _quantity(item, "blockNumber"):
        raise InvalidReceipt("not a Conclave receipt: a validator-set change's header is of another block")
    reopening = item.get("reopening")  # absent from receipts made before reopenings
    return ValidatorChange(
        header=header,
        certificate=_certificate(item["certificate"]),
        governance=GovernanceProof(
            account_proof=_nodes(item, "accountProof"),
            storage_proof=_nodes(item, "storageProof"),
            state=_bytes(item, "governanceState"),
        ),
        reopening=None if reopening is None else _reopening(reopening),
    )


def _reopening(item: Any) -> ReopeningEvidence:
    if not isinstance(item, Mapping):
        raise InvalidReceipt("not a Conclave receipt: a validator-set change's reopening is a JSON object")
    return ReopeningEvidence(
        record=_bytes(item, "record"),
        parent_header=_bytes(item, "parentHeader"),
        parent_certificate=_certificate(item["parentCertificate"]),
        parent_governance=GovernanceProof(
            account_proof=_nodes(item, "parentAccountProof"),
            storage_proof=_nodes(item, "parentStorageProof"),
            state=_bytes(item, "parentGovernanceState"),
        ),
    )


def _certificate(item: Any) -> CommitCertificate:
    if not isinstance(item, Mapping):
        raise InvalidReceipt("not a Conclave receipt: a certificate is a JSON object")
    return CommitCertificate(
        _quantity(item, "round"), tuple(_hex_bytes(seal, "seals", 65) for seal in _list(item, "seals"))
    )


def _list(item: Mapping[str, Any], name: str) -> Sequence[Any]:
    value = item[name]
    if not isinstance(value, list):
        raise InvalidReceipt(f'not a Conclave receipt: "{name}" is a list')
    return value


def _nodes(item: Mapping[str, Any], name: str) -> tuple[bytes, ...]:
    return tuple(_hex_bytes(node, name) for node in _list(item, name))


def _bytes(item: Mapping[str, Any], name: str, length: int | None = None) -> bytes:
    return _hex_bytes(item[name], name, length)


def _hex_bytes(value: Any, name: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise InvalidReceipt(f'not a Conclave receipt: "{name}" holds 0x-prefixed hex bytes')
    try:
        decoded = bytes.fromhex(value[2:])
    except ValueError:
        raise InvalidReceipt(f'not a Conclave receipt: "{name}" holds 0x-prefixed hex bytes') from None
    if length is not None and len(decoded) != length:
        raise InvalidReceipt(f'not a Conclave receipt: "{name}" holds {length}-byte values')
    return decoded


def _quantity(item: Mapping[str, Any], name: str) -> int:
    value = item[name]
    if not isinstance(value, str) or not value.startswith("0x") or len(value) > 18:
        raise InvalidReceipt(f'not a Conclave receipt: "{name}" is a 0x-prefixed hex quantity')
    try:
        return int(value[2:], 16)
    except ValueError:
        raise InvalidReceipt(f'not a Conclave receipt: "{name}" is a 0x-prefixed hex quantity') from None
