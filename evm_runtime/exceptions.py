"""The exception tree of Conclave's domain errors.

    ConclaveError
    ├── InvalidRequest            (input that can never be valid: bad RLP, wrong chain id)
    │   ├── BlockNumberNotIncreasing / BlockTimeDecreasing   (simulated blocks out of order)
    │   └── PrecompileMovedToItself / PrecompileMovedTwice   (bad state overrides)
    ├── TransactionRejected       (valid shape, refused by the rules of the chain now)
    │   ├── NonceTooLow / NonceTooHigh
    │   ├── InsufficientFunds
    │   ├── IntrinsicGasTooLow / GasLimitExceeded
    │   ├── FeeTooLow / PriorityFeeAboveMaxFee
    │   ├── AlreadyKnown / ReplacementUnderpriced / PoolFull
    │   ├── UnsupportedTransactionType
    │   └── InitCodeTooLarge
    ├── ExecutionReverted         (a call or estimate reverted; carries the revert data)
    ├── ExecutionFailed           (a call or estimate halted: out of gas, invalid opcode)
    ├── NotFound                  (an unknown block)
    ├── LimitExceeded             (a request asks for more work than the node allows)
    └── Unauthenticated           (a sign-in or login token that is refused)

The gateway maps each class to a JSON-RPC error code in one table; nothing else does.
"""

from __future__ import annotations


class ConclaveError(Exception):
    """Root of every error Conclave raises on purpose."""


class InvalidRequest(ConclaveError):
    """The input is malformed and can never be accepted as it is."""


class TransactionRejected(ConclaveError):
    """The transaction is well formed but the chain's rules refuse it now."""


class NonceTooLow(TransactionRejected):
    pass


class NonceTooHigh(TransactionRejected):
    pass


class InsufficientFunds(TransactionRejected):
    pass


class IntrinsicGasTooLow(TransactionRejected):
    pass


class GasLimitExceeded(TransactionRejected):
    pass


class FeeTooLow(TransactionRejected):
    pass


class PriorityFeeAboveMaxFee(TransactionRejected):
    pass


class AlreadyKnown(TransactionRejected):
    pass


class ReplacementUnderpriced(TransactionRejected):
    pass


class PoolFull(TransactionRejected):
    pass


class NotPermitted(TransactionRejected):
    """The network's governance does not let this sender do this (permissioning)."""


class UnsupportedTransactionType(TransactionRejected):
    pass


class InitCodeTooLarge(TransactionRejected):
    """A contract creation's init code is longer than EIP-3860 allows."""


class BlockNumberNotIncreasing(InvalidRequest):
    """A simulated block's number is not above its parent's."""


class BlockTimeDecreasing(InvalidRequest):
    """A simulated block's timestamp is below its parent's."""


class PrecompileMovedToItself(InvalidRequest):
    """A state override moves a precompile to its own address."""


class PrecompileMovedTwice(InvalidRequest):
    """Two state overrides move precompiles to the same address."""


class ExecutionReverted(ConclaveError):
    """Execution hit REVERT; `data` is the revert payload (reason or custom error)."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(message)
        self.data = data


class ExecutionFailed(ConclaveError):
    """Execution halted exceptionally (out of gas, invalid opcode, stack errors)."""


class NotFound(ConclaveError):
    """The block or object asked for does not exist."""


class LimitExceeded(ConclaveError):
    """The answer would exceed one of the node's bounds; ask for less."""


class Unauthenticated(ConclaveError):
    """A sign-in message or login token that is refused: expired, tampered, replayed,
    signed by another key, or for another node or chain."""
