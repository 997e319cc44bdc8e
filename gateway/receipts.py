"""Verifying a receipt offline, with no node: `verify_document(document, validators)`.

A receipt is what `conclave_getTransactionProof` (or `GET /receipts/{hash}`, or
`conclave receipt get`) answers: a transaction, its receipt, their Merkle proofs, the
block header and its commit certificate (`ledger.receipts`, docs/receipts.md). Anyone
who knows a validator set of the network verifies it:

    import json
    from gateway.receipts import verify_document

    verified = verify_document(json.load(open("receipt.json")), ["0xf39F…"])
    print(verified.sender, verified.status, verified.block_number)

It raises `InvalidReceipt` saying why a receipt does not verify. This module plugs
governance's layout (its contract, the slot of its state's hash, its encoding, how a
reopening record and an attestation quote are read) into the ledger's verifier, so that a
receipt leads from an earlier validator set to its block's across the validator-set
changes it carries, the reopenings of a recovered network too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth_utils import to_checksum_address

from enclave.attestation import AttestationError, Quote
from enclave.identity import address_of
from evm_runtime.system_contracts import BLOB_SLOT
from evm_runtime.types import Address
from governance.codec import decode_state
from governance.reopening import ApprovedReopening
from governance.system_contract import GOVERNANCE_ADDRESS
from ledger.receipts import (
    GovernanceLayout,
    InvalidReceipt,
    ReopeningTerms,
    VerifiableReceipt,
    VerifiedReceipt,
    receipt_from_json,
    verify_receipt,
)


def _recovery(state: bytes) -> tuple[frozenset[Address], int]:
    """The members of an encoded governance state and how many of them reopen the network."""
    decoded = decode_state(state)
    return frozenset(decoded.members), decoded.recovery_threshold


def _reopening_terms(record: bytes) -> ReopeningTerms:
    """What a reopening block's record (`governance.reopening.ApprovedReopening`) says."""
    approved = ApprovedReopening.decode(record)
    reopening = approved.reopening
    return ReopeningTerms(
        parent_number=reopening.parent_number,
        parent_hash=reopening.parent_hash,
        approval_digest=reopening.approval_digest,
        approvals=approved.approvals,
        quotes=tuple(validator.quote for validator in reopening.validators),
    )


def _quote_address(quote: bytes) -> Address:
    """The validator address a quote names: its node key's (as `add_validator` reads it)."""
    try:
        return address_of(Quote.decode(quote).node_public_key)
    except AttestationError as malformed:
        raise ValueError(str(malformed)) from None


GOVERNANCE = GovernanceLayout(
    GOVERNANCE_ADDRESS,
    BLOB_SLOT,
    lambda state: decode_state(state).validators,
    recovery=_recovery,
    reopening=_reopening_terms,
    quote_address=_quote_address,
)
"""Where governance keeps the validators, for following validator-set changes and reopenings."""

__all__ = ["GOVERNANCE", "InvalidReceipt", "parse_validators", "verified_to_json", "verify_document"]


def parse_validators(addresses: Iterable[str | bytes]) -> frozenset[Address]:
    """Addresses as `0x`-prefixed hex (any case) or 20 bytes; ValueError for anything else."""
    parsed = set()
    for address in addresses:
        if isinstance(address, bytes) and len(address) == 20:
            parsed.add(Address(address))
            continue
        text = address.strip() if isinstance(address, str) else ""
        if len(text) != 42 or not text.startswith("0x"):
            raise ValueError(f"{address!r} is not an address: 0x and 40 hex digits")
        try:
            parsed.add(Address(bytes.fromhex(text[2:])))
        except ValueError:
            raise ValueError(f"{address!r} is not an address: 0x and 40 hex digits") from None
    return frozenset(parsed)


def verify_document(document: Any | VerifiableReceipt, validators: Iterable[str | bytes]) -> VerifiedReceipt:
    """What the receipt (its JSON form, or decoded) proves, if it verifies against
    `validators` (a set of the network's validators the caller trusts, at the receipt's
    block or before it); InvalidReceipt otherwise."""
    receipt = document if isinstance(document, VerifiableReceipt) else receipt_from_json(document)
    return verify_receipt(receipt, parse_validators(validators), GOVERNANCE)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def verified_to_json(verified: VerifiedReceipt) -> dict[str, Any]:
    """What a verified receipt shows, as JSON (hex bytes and quantities, checksummed addresses)."""
    return {
        "valid": True,
        "transactionHash": _hex(verified.transaction_hash),
        "blockNumber": hex(verified.block_number),
        "blockHash": _hex(verified.block_hash),
        "timestamp": hex(verified.timestamp),
        "transactionIndex": hex(verified.index),
        "chainId": hex(verified.chain_id),
        "type": hex(verified.transaction_type),
        "from": to_checksum_address(verified.sender),
        "to": None if verified.to is None else to_checksum_address(verified.to),
        "contractAddress": (
            None if verified.contract_address is None else to_checksum_address(verified.contract_address)
        ),
        "nonce": hex(verified.nonce),
        "value": hex(verified.value),
        "status": hex(verified.status),
        "cumulativeGasUsed": hex(verified.cumulative_gas_used),
        "logs": [
            {
                "address": to_checksum_address(log.address),
                "topics": [_hex(topic) for topic in log.topics],
                "data": _hex(log.data),
            }
            for log in verified.logs
        ],
        "validators": sorted(to_checksum_address(v) for v in verified.validators),
        "signers": sorted(to_checksum_address(v) for v in verified.signers),
        "validatorChangesFollowed": verified.changes_followed,
        "reopeningsFollowed": verified.reopenings_followed,
    }
