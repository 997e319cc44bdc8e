"""JSON-RPC errors, and the one table that maps Conclave's exceptions onto them.

Codes follow JSON-RPC 2.0 and the execution-apis error groups: -32700 parse error,
-32600 invalid request, -32601 method not found, -32602 invalid params, -32603 internal
error, 3 execution reverted (with the revert data), 1/2 nonce too low/high, 8xx gas and
fee errors, 1000 already known, -32003 transaction rejected, -32001 resource not found,
-32005 limit exceeded, -32007 sender not permitted (as Besu), -32000 "filter not found"
(as geth answers), 4100 unauthenticated (EIP-1193's "Unauthorized", which ethers and viem
know). eth_simulateV1 answers its spec's own codes (-38010 to -38026) where
the spec names one (`to_simulation_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evm_runtime import exceptions as ex

from .filters import FilterNotFound, TooManyFilters

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
INVALID_INPUT = -32000
RESOURCE_NOT_FOUND = -32001
TRANSACTION_REJECTED = -32003
LIMIT_EXCEEDED = -32005
NOT_PERMITTED = -32007
"""As Besu answers a sender its permissioning refuses."""
EXECUTION_REVERTED = 3
UNAUTHENTICATED = 4100
"""EIP-1193's "Unauthorized": a refused sign-in or login token."""


@dataclass
class RpcError(Exception):
    """An error answered to the client as it is."""

    code: int
    message: str
    data: Any = None

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


# Most specific first: the first class an exception is an instance of decides its code.
_CODES: tuple[tuple[type[ex.ConclaveError], int], ...] = (
    (ex.NonceTooLow, 1),
    (ex.NonceTooHigh, 2),
    (ex.IntrinsicGasTooLow, 800),
    (ex.FeeTooLow, 806),
    (ex.GasLimitExceeded, 803),
    (ex.PriorityFeeAboveMaxFee, 804),
    (ex.InsufficientFunds, 809),
    (ex.AlreadyKnown, 1000),
    (ex.ReplacementUnderpriced, TRANSACTION_REJECTED),
    (ex.PoolFull, TRANSACTION_REJECTED),
    (ex.UnsupportedTransactionType, TRANSACTION_REJECTED),
    (ex.NotPermitted, NOT_PERMITTED),
    (ex.TransactionRejected, TRANSACTION_REJECTED),
    (ex.InvalidRequest, INVALID_INPUT),
    (ex.ExecutionFailed, INVALID_INPUT),
    (ex.NotFound, RESOURCE_NOT_FOUND),
    (ex.LimitExceeded, LIMIT_EXCEEDED),
    (ex.Unauthenticated, UNAUTHENTICATED),
    (FilterNotFound, INVALID_INPUT),  # as geth answers an unknown or expired filter id
    (TooManyFilters, LIMIT_EXCEEDED),
)


def to_rpc_error(error: ex.ConclaveError) -> RpcError:
    """The JSON-RPC error for a domain exception."""
    if isinstance(error, ex.ExecutionReverted):
        return RpcError(EXECUTION_REVERTED, str(error), "0x" + error.data.hex())
    for kind, code in _CODES:
        if isinstance(error, kind):
            return RpcError(code, str(error))
    return RpcError(INTERNAL_ERROR, str(error))


VM_EXECUTION_ERROR = -32015
"""eth_simulateV1: a simulated call halted (its result's error; a revert is EXECUTION_REVERTED)."""

# eth_simulateV1 answers the spec's own codes for these (execution-apis eth/execute.yaml).
_SIMULATION_CODES: tuple[tuple[type[ex.ConclaveError], int], ...] = (
    (ex.NonceTooLow, -38010),
    (ex.NonceTooHigh, -38011),
    (ex.FeeTooLow, -38012),
    (ex.IntrinsicGasTooLow, -38013),
    (ex.InsufficientFunds, -38014),
    (ex.GasLimitExceeded, -38015),
    (ex.BlockNumberNotIncreasing, -38020),
    (ex.BlockTimeDecreasing, -38021),
    (ex.PrecompileMovedToItself, -38022),
    (ex.PrecompileMovedTwice, -38023),
    (ex.InitCodeTooLarge, -38025),
    (ex.LimitExceeded, -38026),
    (ex.PriorityFeeAboveMaxFee, INVALID_PARAMS),
)


def to_simulation_error(error: ex.ConclaveError) -> RpcError:
    """The JSON-RPC error eth_simulateV1 answers for a domain exception."""
    for kind, code in _SIMULATION_CODES:
        if isinstance(error, kind):
            return RpcError(code, str(error))
    return to_rpc_error(error)
