"""Confidential transactions at rest: sealed whole, bound to their hash, opened only whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave.records import open_record, seal_record
from enclave.sealing import LedgerSecrets, UnsealError
from evm_runtime.types import Address, ExecutedTransaction, Hash32, LogRecord
from ledger.store import SealedRow

addresses = st.binary(min_size=20, max_size=20).map(Address)
hashes = st.binary(min_size=32, max_size=32).map(Hash32)
logs = st.builds(
    LogRecord,
    address=addresses,
    topics=st.lists(st.binary(min_size=32, max_size=32), max_size=4).map(tuple),
    data=st.binary(max_size=200),
    log_index=st.integers(0, 10_000),
)
records = st.builds(
    ExecutedTransaction,
    hash=hashes,
    raw=st.binary(min_size=1, max_size=300),
    sender=addresses,
    to=st.none() | addresses,
    nonce=st.integers(0, 2**64 - 1),
    index=st.integers(0, 1_000),
    tx_type=st.integers(0, 4),
    status=st.integers(0, 1),
    gas_used=st.integers(0, 2**63),
    cumulative_gas_used=st.integers(0, 2**63),
    effective_gas_price=st.integers(0, 2**256 - 1),
    contract_address=st.none() | addresses,
    logs=st.lists(logs, max_size=4).map(tuple),
    logs_bloom=st.binary(min_size=256, max_size=256),
    receipt_rlp=st.binary(max_size=300),
    private_for=st.lists(addresses, max_size=5).map(tuple),
    reached=st.lists(addresses, max_size=3).map(tuple),
)
SECRETS = LedgerSecrets.create()


def _row(stored: ExecutedTransaction, block: int = 7) -> SealedRow:
    assert stored.sealed is not None
    return SealedRow(stored.hash, block, stored.index, stored.sealed)


@given(records)
def test_a_sealed_record_opens_to_itself_and_the_host_keeps_only_public_facts(
    record: ExecutedTransaction,
) -> None:
    stored = seal_record(SECRETS, record)
    assert open_record(SECRETS, _row(stored)) == record
    kept = (
        stored.hash,
        stored.sender,
        stored.nonce,
        stored.index,
        stored.gas_used,
        stored.cumulative_gas_used,
    )
    assert kept == (
        record.hash,
        record.sender,
        record.nonce,
        record.index,
        record.gas_used,
        record.cumulative_gas_used,
    )
    assert (stored.raw, stored.logs, stored.receipt_rlp, stored.to, stored.private_for, stored.reached) == (
        b"",
        (),
        b"",
        None,
        None,
        (),
    )
    assert record.raw not in stored.sealed or len(record.raw) < 4


@given(records, records)
def test_a_record_moved_to_another_rows_hash_does_not_open(
    first: ExecutedTransaction, second: ExecutedTransaction
) -> None:
    if first.hash == second.hash:
        return
    moved = SealedRow(second.hash, 1, 0, seal_record(SECRETS, first).sealed or b"")
    with pytest.raises(UnsealError):
        open_record(SECRETS, moved)


@given(records, st.integers(0, 10_000))
def test_any_changed_byte_is_refused(record: ExecutedTransaction, position: int) -> None:
    row = _row(seal_record(SECRETS, record))
    flipped = bytearray(row.sealed)
    flipped[position % len(flipped)] ^= 0x01
    with pytest.raises(UnsealError):
        open_record(SECRETS, SealedRow(row.hash, row.block_number, row.transaction_index, bytes(flipped)))


@given(records)
def test_records_sealed_before_a_rotation_still_open(record: ExecutedTransaction) -> None:
    old = _row(seal_record(SECRETS, record))
    rotated = SECRETS.rotated()
    assert open_record(rotated, old) == record
    assert open_record(rotated, _row(seal_record(rotated, record))) == record
    with pytest.raises(UnsealError):
        open_record(LedgerSecrets.create(), old)
