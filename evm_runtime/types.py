"""Small shared types: typed ids and the records execution hands to storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

Address = NewType("Address", bytes)
Hash32 = NewType("Hash32", bytes)
Wei = NewType("Wei", int)

ZERO_ADDRESS = Address(b"\x00" * 20)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log entry, placed in its block."""

    address: Address
    topics: tuple[bytes, ...]
    data: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class ExecutedTransaction:
    """A transaction as it was included in a block, with its receipt facts."""

    hash: Hash32
    raw: bytes
    sender: Address
    to: Address | None
    nonce: int
    index: int
    tx_type: int
    status: int
    gas_used: int
    cumulative_gas_used: int
    effective_gas_price: int
    contract_address: Address | None
    logs: tuple[LogRecord, ...]
    logs_bloom: bytes
    receipt_rlp: bytes
    private_for: tuple[Address, ...] | None = None
    """Not None: it is confidential, to its sender, these and the parties of `reached`."""
    reached: tuple[Address, ...] = ()
    """The confidential contracts it ran or created (`evm_runtime.confidential`)."""
    sealed: bytes | None = None
    """A confidential transaction as storage keeps it: everything above but the public
    facts (hash, sender, nonce, position, gas) sealed by the enclave; the other fields are
    then empty."""

    @property
    def confidential(self) -> bool:
        return self.private_for is not None
