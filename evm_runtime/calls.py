"""Read-only execution against a block's state: account reads, eth_call, gas estimates.

Calls run in the context of the block they name (its number, timestamp, state), with
state overrides (`overrides`) applied first if any are given. A call that names no fee
runs with a base fee of zero, as geth does, so an account with no ether can still call
view functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from eth._utils.address import generate_contract_address
from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI, StateAPI
from eth.exceptions import Revert
from eth_abi import decode as abi_decode
from eth_utils import ValidationError

from .chain import VM, ChainParams
from .confidential import ANONYMOUS, Reader
from .exceptions import (
    ExecutionFailed,
    ExecutionReverted,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidRequest,
)
from .overrides import NO_OVERRIDES, StateOverrides, apply_overrides
from .state_db import NodeCache, StateOverlay
from .transactions import CallRequest, make_call_transaction
from .types import Address, Hash32

ERROR_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")
CALL_STIPEND = 2300


def state_at(
    header: BlockHeaderAPI,
    params: ChainParams,
    cache: NodeCache,
    ancestor_hashes: Iterable[Hash32] = (),
) -> StateAPI:
    """A throw-away state as of `header`: writes to it are never stored."""
    return VM.build_state(StateOverlay(cache), header, params.context, tuple(ancestor_hashes))


def revert_reason(data: bytes) -> str | None:
    """The reason of `Error(string)` revert data; None for any other data."""
    if data[:4] != ERROR_SELECTOR:
        return None
    try:
        (reason,) = abi_decode(["string"], data[4:])
    except Exception:  # noqa: BLE001 - malformed reason strings are not an error
        return None
    return str(reason)


def revert_message(data: bytes) -> str:
    """The message geth gives for a revert with `data`."""
    reason = revert_reason(data)
    if reason is not None:
        return f"execution reverted: {reason}"
    if data[:4] == PANIC_SELECTOR and len(data) == 36:
        return f"execution reverted: panic code {int.from_bytes(data[4:], 'big'):#04x}"
    return "execution reverted"


def _raise_for(computation: ComputationAPI) -> None:
    if not computation.is_error:
        return
    error = computation.error
    if isinstance(error, Revert):
        data = bytes(computation.output)
        raise ExecutionReverted(revert_message(data), data)
    raise ExecutionFailed(f"execution failed: {type(error).__name__} {error}".rstrip())


def _apply(state: StateAPI, tx: SignedTransactionAPI) -> ComputationAPI:
    snapshot = state.snapshot()
    try:
        return state.apply_transaction(tx)
    except ValidationError as exc:
        text = str(exc)
        if "balance" in text.lower():
            raise InsufficientFunds(f"insufficient funds for gas * price + value: {text}") from exc
        raise InvalidRequest(f"invalid call: {text}") from exc
    finally:
        state.revert(snapshot)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    output: bytes
    gas_used: int


AccessList = tuple[tuple[Address, tuple[int, ...]], ...]
MAX_ACCESS_LIST_ROUNDS = 16


@dataclass(frozen=True, slots=True)
class AccessListOutcome:
    """The accounts and slots a call touches, and the gas it uses with them declared."""

    access_list: AccessList
    gas_used: int
    error: str | None


def _record_accesses(state: StateAPI) -> dict[Address, set[int]]:
    """Every account and storage slot `state` marks warm from now on (EIP-2929), but for
    what the system reads for itself with the state's visibility lifted (confidential
    contracts' parties, `evm_runtime.confidential`): that is not the call's."""
    touched: dict[Address, set[int]] = {}
    accounts = state._account_db  # type: ignore[attr-defined]
    mark_address, mark_storage = accounts.mark_address_warm, accounts.mark_storage_warm

    def address_warm(address: Address) -> None:
        if state.visibility is not None:  # type: ignore[attr-defined]
            touched.setdefault(Address(address), set())
        mark_address(address)

    def storage_warm(address: Address, slot: int) -> None:
        if state.visibility is not None:  # type: ignore[attr-defined]
            touched.setdefault(Address(address), set()).add(slot)
        mark_storage(address, slot)

    accounts.mark_address_warm, accounts.mark_storage_warm = address_warm, storage_warm
    return touched


class CallContext:
    """Executes calls against one block's state, as `overrides` change it."""

    def __init__(
        self,
        header: BlockHeaderAPI,
        params: ChainParams,
        cache: NodeCache,
        ancestor_hashes: Iterable[Hash32] = (),
        overrides: StateOverrides = NO_OVERRIDES,
        reader: Reader = ANONYMOUS,
    ) -> None:
        """Calls see confidential contracts as `reader` may (`evm_runtime.confidential`);
        a call's `from` is never who reads."""
        self._header = header
        self._params = params
        self._cache = cache
        self._ancestors = tuple(ancestor_hashes)
        self._overrides = overrides
        self._reader = reader

    def _state_for(self, call: CallRequest) -> StateAPI:
        header = self._header if call.pays_fees else self._header.copy(base_fee_per_gas=0)
        state = state_at(header, self._params, self._cache, self._ancestors)
        apply_overrides(state, self._overrides)
        state.visibility = self._reader.visibility()  # type: ignore[attr-defined]
        if call.nonce is not None:
            # As geth does, a call is not refused for its nonce: it runs as if the sender's
            # nonce were the one given (which decides the address of a contract it creates).
            try:
                state.set_nonce(call.sender, call.nonce)
            except ValidationError as exc:
                raise InvalidRequest(f"invalid call nonce: {exc}") from exc
        return state

    def _transaction(self, state: StateAPI, call: CallRequest, gas: int) -> SignedTransactionAPI:
        nonce = state.get_nonce(call.sender)
        return make_call_transaction(call, chain_id=self._params.chain_id, nonce=nonce, gas=gas)

    def apply(
        self, call: CallRequest, prepare: Callable[[StateAPI], object] | None = None
    ) -> tuple[SignedTransactionAPI, ComputationAPI]:
        """Run `call` (on a state `prepare` may adjust first) and return the transaction
        and its computation, failed or not; raise only if it cannot start."""
        state = self._state_for(call)
        if prepare is not None:
            prepare(state)
        tx = self._transaction(state, call, call.gas)
        if call.gas < tx.intrinsic_gas:
            raise IntrinsicGasTooLow(
                f"intrinsic gas too low: gas {call.gas}, minimum needed {tx.intrinsic_gas}"
            )
        return tx, _apply(state, tx)

    def call(self, call: CallRequest) -> CallOutcome:
        """Execute `call` and return its output; raise if it reverts or halts."""
        tx, computation = self.apply(call)
        _raise_for(computation)
        return CallOutcome(
            output=bytes(computation.output),
            gas_used=tx.gas - computation.get_gas_remaining(),
        )

    def create_access_list(self, call: CallRequest) -> AccessListOutcome:
        """The access list that covers what `call` touches, as geth makes it.

        The call runs with the list found so far until the list stops changing. The
        sender, the recipient (or the created contract), the coinbase and the precompiles
        are warm anyway: they are listed only for the storage slots touched in them.
        """
        precompiles = set(VM.get_state_class().computation_class.get_precompiles())
        current: AccessList = tuple(call.access_list)  # type: ignore[arg-type]
        for _ in range(MAX_ACCESS_LIST_ROUNDS):
            traced = replace(call, access_list=current)
            state = self._state_for(traced)
            tx = self._transaction(state, traced, traced.gas)
            recipient = call.to or generate_contract_address(call.sender, tx.nonce)
            warm_anyway = {call.sender, recipient, Address(self._header.coinbase), *precompiles}
            touched = _record_accesses(state)
            computation = _apply(state, tx)
            found = tuple(
                (address, tuple(sorted(slots)))
                for address, slots in touched.items()
                if slots or address not in warm_anyway
            )
            if found == current:
                break
            current = found
        used = tx.gas - computation.get_gas_remaining()
        refund = min(computation.get_gas_refund(), used // 5)
        error = None
        if computation.is_error:
            error = (
                revert_message(bytes(computation.output))
                if isinstance(computation.error, Revert)
                else f"execution failed: {type(computation.error).__name__}"
            )
        return AccessListOutcome(current, used - refund, error)

    def estimate_gas(self, call: CallRequest) -> int:
        """The least gas limit with which `call` succeeds (found by binary search)."""
        state = self._state_for(call)
        cap = call.gas

        def succeeds(gas: int) -> tuple[bool, ComputationAPI | None]:
            tx = self._transaction(state, call, gas)
            if gas < tx.intrinsic_gas:
                return False, None
            computation = _apply(state, tx)
            return not computation.is_error, computation

        ok, computation = succeeds(cap)
        if not ok:
            if computation is None:
                raise ExecutionFailed(f"gas required exceeds allowance ({cap})")
            if isinstance(computation.error, Revert):
                _raise_for(computation)
            raise ExecutionFailed(f"gas required exceeds allowance ({cap})")
        used = cap - computation.get_gas_remaining()
        low, high = used - 1, cap
        optimistic = min(cap, (used + CALL_STIPEND) * 64 // 63)
        if optimistic < high and succeeds(optimistic)[0]:
            high = optimistic
        while high - low > 1:
            middle = (low + high) // 2
            if succeeds(middle)[0]:
                high = middle
            else:
                low = middle
        return high
