"""Blocks as validators propose them, and transactions as they forward them.

A proposal carries what execution needs to build the block again, and nothing of it in
the clear that a confidential transaction could show: `rlp([timestamp, coinbase, sealed])`,
`sealed` being `rlp([[raw, confidential, parties], …])` sealed with the ledger secret
that every validator's enclave holds. Every validator executes it on its own head and
prepares only a block whose hash is the one proposed (`InProcessEnclave.validate_proposal`).

A transaction forwarded to the other validators is its raw signed bytes if it is public;
a confidential one is `0x00 ‖ sealed(rlp([raw, parties]))`, so that only an enclave opens
it, and only an enclave could have made it: the receiving enclave admits it as
confidential without the sender's login token, which its own node could not check. (A raw
transaction never starts with 0x00: typed ones start with their type, legacy ones with an
RLP list.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import rlp

from evm_runtime.confidential import MAX_PARTIES
from evm_runtime.exceptions import InvalidRequest
from evm_runtime.transactions import DecodedTransaction, decode_signed_transaction
from evm_runtime.types import Address
from ledger.store import LedgerStore

from .records import open_record
from .sealing import LedgerSecrets

PROPOSAL_PURPOSE = b"conclave/proposal/v1"
FORWARD_PURPOSE = b"conclave/forwarded-transaction/v1"
CONFIDENTIAL_MARK = b"\x00"


class MalformedProposal(ValueError):
    """Bytes that are not a proposal this enclave can open."""


@dataclass(frozen=True, slots=True)
class OpenedProposal:
    timestamp: int
    coinbase: Address
    batch: tuple[DecodedTransaction, ...]
    record: bytes = b""
    """A record block's record (`evm_runtime.record_blocks`: a reopening), in clear; its
    batch is empty."""


def _parties(decoded: DecodedTransaction) -> list[bytes]:
    return [bytes(party) for party in decoded.private_for or ()]


def encode_proposal(
    secrets: LedgerSecrets,
    timestamp: int,
    coinbase: Address,
    batch: Sequence[DecodedTransaction],
    record: bytes = b"",
) -> bytes:
    """The proposal of a block of `batch` (or of the record block of `record`), made at
    `timestamp` for `coinbase`."""
    body = rlp.encode([[tx.raw, int(tx.private_for is not None), _parties(tx)] for tx in batch])
    fields = [timestamp, bytes(coinbase), secrets.seal(body, PROPOSAL_PURPOSE)]
    encoded: bytes = rlp.encode(fields + [record] if record else fields)
    return encoded


def decode_proposal(secrets: LedgerSecrets, payload: bytes, chain_id: int) -> OpenedProposal:
    """The block a proposal describes; `MalformedProposal` if it does not open or decode."""
    try:
        timestamp, coinbase, sealed, *rest = rlp.decode(payload)
        entries = rlp.decode(secrets.unseal(sealed, PROPOSAL_PURPOSE))
        batch = tuple(
            _with_parties(decode_signed_transaction(raw, chain_id), confidential, parties)
            for raw, confidential, parties in entries
        )
        record = rest[0] if rest else b""
        if len(rest) > 1 or (rest and (not record or batch)):
            raise ValueError("a record block's proposal holds one record and no transactions")
        return OpenedProposal(
            rlp.sedes.big_endian_int.deserialize(timestamp), Address(coinbase), batch, bytes(record)
        )
    except Exception as error:  # anything a peer sends may be malformed: never more than a refusal
        raise MalformedProposal(f"the proposal does not open: {error}") from None


def _with_parties(
    decoded: DecodedTransaction, confidential: bytes, parties: list[bytes]
) -> DecodedTransaction:
    if confidential not in (b"", b"\x01") or len(parties) > MAX_PARTIES or any(len(p) != 20 for p in parties):
        raise ValueError("a malformed transaction entry")
    if confidential != b"\x01":
        return decoded
    return replace(decoded, private_for=tuple(Address(party) for party in parties))


def stored_batch(
    store: LedgerStore, secrets: LedgerSecrets, number: int, chain_id: int
) -> list[DecodedTransaction]:
    """The transactions of stored block `number` in order, as its proposal carried them."""
    entries = [(tx.transaction_index, tx.raw, None) for tx in store.transactions_of_block(number)]
    for row in store.sealed_transactions(number, number):
        record = open_record(secrets, row)
        entries.append((row.transaction_index, record.raw, record.private_for))
    entries.sort(key=lambda entry: entry[0])
    return [
        replace(decode_signed_transaction(raw, chain_id), private_for=private_for)
        for _, raw, private_for in entries
    ]


def forwardable(secrets: LedgerSecrets, decoded: DecodedTransaction) -> bytes:
    """What the other validators are sent of an admitted transaction."""
    if decoded.private_for is None:
        return decoded.raw
    return CONFIDENTIAL_MARK + secrets.seal(rlp.encode([decoded.raw, _parties(decoded)]), FORWARD_PURPOSE)


def open_forwarded(secrets: LedgerSecrets, data: bytes, chain_id: int) -> DecodedTransaction:
    """The transaction another validator forwarded (`forwardable`)."""
    if not data.startswith(CONFIDENTIAL_MARK):
        return decode_signed_transaction(data, chain_id)
    try:
        raw, parties = rlp.decode(secrets.unseal(data[1:], FORWARD_PURPOSE))
    except Exception as error:  # only another enclave makes these: a refusal, never a crash
        raise InvalidRequest(f"the forwarded transaction does not open: {error}") from None
    return _with_parties(decode_signed_transaction(raw, chain_id), b"\x01", parties)
