"""Confidential transactions at rest: sealed whole with the ledger secret.

A confidential `ExecutedTransaction` is stored as its hash and position in the clear and
one sealed blob holding everything else (payload, receipt, logs, parties), bound to its
hash, so a blob moved to another row does not open. What crosses to the host for storage
is the stripped record `seal_record` returns.
"""

from __future__ import annotations

from dataclasses import replace

from evm_runtime.types import ExecutedTransaction
from ledger.store import SealedRow

from .messages import decode, encode
from .sealing import LedgerSecrets

PURPOSE = b"conclave/confidential-transaction/v1/"


def seal_record(secrets: LedgerSecrets, executed: ExecutedTransaction) -> ExecutedTransaction:
    """`executed` as the host may hold and store it: its public facts, the rest sealed."""
    sealed = secrets.seal(encode(executed), PURPOSE + executed.hash)
    return replace(
        executed,
        raw=b"",
        to=None,
        tx_type=0,
        status=0,
        contract_address=None,
        logs=(),
        logs_bloom=b"",
        receipt_rlp=b"",
        private_for=None,
        reached=(),
        sealed=sealed,
    )


def open_record(secrets: LedgerSecrets, row: SealedRow) -> ExecutedTransaction:
    """The confidential transaction a stored row seals."""
    record = decode(secrets.unseal(row.sealed, PURPOSE + row.hash))
    if not isinstance(record, ExecutedTransaction) or record.hash != row.hash:
        raise ValueError(f"sealed transaction 0x{row.hash.hex()} holds another record")
    return record
