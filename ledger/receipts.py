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
  state proven from its state root.

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
   verifier trusts, or not certified at all);
4. the block's certificate is a quorum of distinct members of the set so found.

So a receipt verifies against the validators of its own block, or against any earlier
set (genesis's, say) from which its changes lead there. What the ledger does not know,
governance's address, slot and encoding, is handed in (`GovernanceLayout`).

`receipt_to_json` / `receipt_from_json` give its JSON form (docs/receipts.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from evm_runtime.chain import decode_header
from evm_runtime.exceptions import ConclaveError
from evm_runtime.receipt_proofs import InvalidProof, proven_storage, verify_index
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
class ValidatorChange:
    """A block after which governance named other validators, certified by those before."""

    header: bytes
    certificate: CommitCertificate
    governance: GovernanceProof


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
    validators, followed = _deciding_validators(receipt, frozenset(trusted), governance)
    signers = certificate_signers(proof.block_hash, receipt.certificate, validators)
    if signers is None or len(signers) < quorum(len(validators)):
        who = (
            f"the validators {followed} validator-set change(s) lead to from the trusted ones"
            if followed
            else "the trusted validators"
        )
        raise InvalidReceipt(
            f"block {proof.block_number}'s commit certificate is not a quorum of {who}: it needs "
            "⌈2n/3⌉ seals, distinct validators' signatures over the block hash and round"
        )
    return _verified(proof, header, validators, signers, followed)


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


def _deciding_validators(
    receipt: VerifiableReceipt, trusted: frozenset[Address], governance: GovernanceLayout | None
) -> tuple[frozenset[Address], int]:
    """The validators the changes lead to from `trusted`, and how many changes were followed."""
    current, followed, previous = trusted, 0, -1
    for change in receipt.changes:
        header = _header(change.header, None, None)
        number = header.block_number
        if not previous < number < receipt.proof.block_number:
            raise InvalidReceipt("the validator-set changes are not in chain order before the block")
        previous = number
        if not verify_certificate(keccak(change.header), change.certificate, current):
            continue
        if governance is None:
            raise InvalidReceipt("following validator-set changes needs governance's layout")
        current = _validators_after(number, header, change.governance, governance)
        followed += 1
    return current, followed


def _validators_after(
    number: int, header: BlockHeaderAPI, proof: GovernanceProof, governance: GovernanceLayout
) -> frozenset[Address]:
    try:
        digest = proven_storage(
            header.state_root, governance.address, governance.slot, proof.account_proof, proof.storage_proof
        )
    except InvalidProof as failed:
        raise InvalidReceipt(f"governance's state after block {number} is not proven: {failed}") from None
    if keccak(proof.state) != digest.to_bytes(32, "big"):
        raise InvalidReceipt(f"governance's state after block {number} is not the one its state root holds")
    try:
        named = frozenset(governance.validators(proof.state))
    except (ValueError, ConclaveError) as malformed:
        raise InvalidReceipt(
            f"governance's state after block {number} does not decode: {malformed}"
        ) from None
    if not named:
        raise InvalidReceipt(f"governance names no validators after block {number}")
    return named


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
            }
            for change in receipt.changes
        ],
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
    return ValidatorChange(
        header=header,
        certificate=_certificate(item["certificate"]),
        governance=GovernanceProof(
            account_proof=_nodes(item, "accountProof"),
            storage_proof=_nodes(item, "storageProof"),
            state=_bytes(item, "governanceState"),
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
