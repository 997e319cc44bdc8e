"""eth_simulateV1: calls run in blocks built on top of a stored block; nothing is stored.

The rules (execution-apis `eth_simulateV1`, as geth serves it):

- The simulated blocks follow the base block. Each takes its number and timestamp from its
  block overrides, or else its parent's plus one. Numbers increase: a skipped number is
  filled with an empty block, which the answer includes. Timestamps never decrease.
- Each block inherits its parent's gas limit and fee recipient unless overridden; its
  PREVRANDAO is its parent's hash (as in every Conclave block) unless overridden.
- A block's state overrides apply before its calls; each call sees the state the calls
  before it left, in its block and the blocks before.
- Without validation a call runs as eth_call does: a call naming no fee pays nothing, the
  base fee is zero unless overridden, and a nonce it gives is taken as its sender's. With
  validation it is checked as a transaction would be (nonce, fees, balance, the network's
  permissioning), except its signature and whether its sender has code.
- Either way, a call that cannot be included (too little gas for its intrinsic cost, more
  value than its sender has (with gas × fee cap for a call naming a fee), more gas than is
  left in the block, init code too large) fails the whole request with a typed error. A
  call that reverts or halts is included with status 0 and its error.
- With `trace_transfers`, every ether transfer that takes effect (the call's own value,
  those of inner calls and creations that do not revert) is among the call's logs as an
  ERC-20 `Transfer(from, to, value)` emitted by 0xeeee…eeee, in the order it happened.
  These logs are not part of the receipts, so they change no block hash.
- Bounds: at most `MAX_BLOCKS` blocks (filled gaps included), `MAX_CALLS` calls and
  `MAX_GAS` gas used in all; beyond them the request fails with `LimitExceeded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.exceptions import Revert
from eth.vm.forks.byzantium.constants import (
    EIP658_TRANSACTION_STATUS_CODE_FAILURE,
    EIP658_TRANSACTION_STATUS_CODE_SUCCESS,
)
from eth_bloom import BloomFilter
from eth_hash.auto import keccak
from eth_utils import ValidationError

from .calls import revert_message
from .chain import VM, ChainParams, encode_header, next_base_fee
from .confidential import ANONYMOUS, Reader
from .exceptions import (
    BlockNumberNotIncreasing,
    BlockTimeDecreasing,
    FeeTooLow,
    GasLimitExceeded,
    InitCodeTooLarge,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidRequest,
    LimitExceeded,
    NonceTooHigh,
    NonceTooLow,
    NotPermitted,
    PriorityFeeAboveMaxFee,
)
from .overrides import NO_OVERRIDES, StateOverrides, apply_overrides
from .state_db import NodeCache, StateOverlay
from .system_contracts import refusal_of
from .transactions import CallRequest, make_call_transaction
from .trie_root import ordered_trie_root
from .types import ZERO_ADDRESS, Address, Hash32, LogRecord

MAX_BLOCKS = 256
"""Simulated blocks in one request, filled gaps included (the spec's suggestion: BLOCKHASH's reach)."""
MAX_CALLS = 1_000
"""Calls in one request, over all its blocks."""
MAX_GAS = 50_000_000
"""Gas the calls of one request may use in all (geth's default RPC gas cap)."""
MAX_INITCODE_BYTES = 49_152
"""EIP-3860: the longest init code a creation may carry."""
MAX_ANCESTORS = 256

TRANSFER_LOG_ADDRESS = Address(b"\xee" * 20)
"""The address traced ether transfers are logged from (the spec's 0xeeee…eeee)."""
TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")


@dataclass(frozen=True, slots=True)
class BlockOverrides:
    """Fields of a simulated block chosen by the caller; None takes the default."""

    number: int | None = None
    time: int | None = None
    gas_limit: int | None = None
    fee_recipient: Address | None = None
    prev_randao: bytes | None = None
    base_fee_per_gas: int | None = None


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    """One call of a simulated block; a field left None takes its default when it runs
    (gas: what is left in the block; nonce: the sender's)."""

    sender: Address = ZERO_ADDRESS
    to: Address | None = None
    gas: int | None = None
    value: int = 0
    data: bytes = b""
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    access_list: tuple[tuple[Address, tuple[int, ...]], ...] = ()
    nonce: int | None = None

    @property
    def pays_fees(self) -> bool:
        return any(
            fee is not None for fee in (self.gas_price, self.max_fee_per_gas, self.max_priority_fee_per_gas)
        )


@dataclass(frozen=True, slots=True)
class BlockStateCall:
    """One simulated block as asked for: its overrides and its calls."""

    block: BlockOverrides = field(default_factory=BlockOverrides)
    state: StateOverrides = NO_OVERRIDES
    calls: tuple[SimulatedCall, ...] = ()


@dataclass(frozen=True, slots=True)
class SimulationRequest:
    blocks: tuple[BlockStateCall, ...]
    validation: bool = False
    trace_transfers: bool = False


@dataclass(frozen=True, slots=True)
class CallResult:
    """A call as it ran in a simulated block.

    `transaction` is the call encoded as a transaction with a zero signature (its keccak is
    `hash`); `error` is None on success, else the revert message (`reverted`) or the halt.
    `logs` are numbered within the block.
    """

    transaction: bytes
    hash: Hash32
    sender: Address
    status: int
    return_data: bytes
    gas_used: int
    max_used_gas: int
    logs: tuple[LogRecord, ...]
    error: str | None = None
    reverted: bool = False


@dataclass(frozen=True, slots=True)
class SimulatedBlock:
    """A sealed simulated block (`header` RLP-encoded) and the results of its calls."""

    header: bytes
    calls: tuple[CallResult, ...]


# -- the plan: numbers and timestamps --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Planned:
    number: int
    time: int
    asked: BlockStateCall
    position: int | None
    """Where the request lists the block; None for a block filling a skipped number."""


def _plan(base: BlockHeaderAPI, blocks: Sequence[BlockStateCall]) -> list[_Planned]:
    """Each block's number and time, with empty blocks filling skipped numbers."""
    if len(blocks) > MAX_BLOCKS:
        raise LimitExceeded(f"too many blocks: {len(blocks)}, at most {MAX_BLOCKS} in one request")
    calls = sum(len(block.calls) for block in blocks)
    if calls > MAX_CALLS:
        raise LimitExceeded(f"too many calls: {calls}, at most {MAX_CALLS} in one request")
    planned: list[_Planned] = []
    number, time = base.block_number, base.timestamp
    for position, block in enumerate(blocks):
        wanted = block.block.number if block.block.number is not None else number + 1
        if wanted <= number:
            raise BlockNumberNotIncreasing(
                f"block {position}: number {wanted} is not above its parent's {number}; "
                "simulated block numbers must increase"
            )
        if wanted - base.block_number > MAX_BLOCKS:
            raise LimitExceeded(
                f"block {position}: number {wanted} is {wanted - base.block_number} blocks after the "
                f"base block; at most {MAX_BLOCKS} blocks (skipped numbers included) in one request"
            )
        for gap in range(number + 1, wanted):
            time += 1
            planned.append(_Planned(gap, time, BlockStateCall(), None))
        wanted_time = block.block.time if block.block.time is not None else time + 1
        if wanted_time < time:
            raise BlockTimeDecreasing(
                f"block {position}: timestamp {wanted_time} is below its parent's {time}; "
                "simulated block timestamps must not decrease"
            )
        planned.append(_Planned(wanted, wanted_time, block, position))
        number, time = wanted, wanted_time
    return planned


# -- traced transfers -----------------------------------------------------------------------


class _TransferTracing:
    """Mixed into a computation class: each message that moves ether records the transfer
    with the log counter of that moment, so it sorts among the real logs."""

    def __init__(self, state: StateAPI, message: Any, transaction_context: Any) -> None:
        super().__init__(state, message, transaction_context)  # type: ignore[call-arg]
        self.transfers: tuple[tuple[int, LogRecord], ...] = ()
        if message.should_transfer_value and message.value:
            sender, recipient = message.sender.rjust(32, b"\0"), message.storage_address.rjust(32, b"\0")
            log = LogRecord(
                address=TRANSFER_LOG_ADDRESS,
                topics=(TRANSFER_TOPIC, sender, recipient),
                data=message.value.to_bytes(32, "big"),
                log_index=0,
            )
            self.transfers = ((transaction_context.get_next_log_counter(), log),)


def _traced(computation: ComputationAPI) -> list[tuple[int, LogRecord]]:
    """The transfers of `computation` and its children that took effect, with their counters."""
    if computation.is_error:
        return []
    found = list(getattr(computation, "transfers", ()))
    for child in computation.children:
        found.extend(_traced(child))
    return found


def _call_logs(computation: ComputationAPI, trace_transfers: bool, first_index: int) -> tuple[LogRecord, ...]:
    """The call's logs in the order they happened, traced transfers among them if asked."""
    entries: list[tuple[int, LogRecord]] = [
        (
            counter,
            LogRecord(
                address=Address(address),
                topics=tuple(topic.to_bytes(32, "big") for topic in topics),
                data=bytes(data),
                log_index=0,
            ),
        )
        for counter, address, topics, data in computation.get_raw_log_entries()
    ]
    if trace_transfers:
        entries.extend(_traced(computation))
        entries.sort(key=lambda entry: entry[0])
    return tuple(
        LogRecord(log.address, log.topics, log.data, first_index + offset)
        for offset, (_, log) in enumerate(entries)
    )


# -- one call -------------------------------------------------------------------------------


def _signed_form(call: CallRequest, chain_id: int, nonce: int, gas: int) -> SignedTransactionAPI:
    """The call as a transaction with a zero signature: what the block lists and hashes."""
    builder = VM.get_transaction_builder()
    to = call.to or b""
    access_list = [(address, list(slots)) for address, slots in call.access_list]
    if call.gas_price is not None:
        return builder.new_access_list_transaction(
            chain_id, nonce, call.gas_price, gas, to, call.value, call.data, access_list, 0, 0, 0
        )
    max_fee = call.max_fee_per_gas or 0
    priority = min(call.max_priority_fee_per_gas or 0, max_fee)
    return builder.new_dynamic_fee_transaction(
        chain_id, nonce, priority, max_fee, gas, to, call.value, call.data, access_list, 0, 0, 0
    )


def _check_call(
    state: StateAPI,
    tx: SignedTransactionAPI,
    call: SimulatedCall,
    base_fee: int,
    validation: bool,
    where: str,
) -> None:
    """Refuse a call that cannot be included in the block (see the module's rules)."""
    if tx.gas < tx.intrinsic_gas:
        raise IntrinsicGasTooLow(
            f"{where}: intrinsic gas too low: gas {tx.gas}, minimum needed {tx.intrinsic_gas}"
        )
    if call.to is None and len(call.data) > MAX_INITCODE_BYTES:
        raise InitCodeTooLarge(
            f"{where}: init code of {len(call.data)} bytes, at most {MAX_INITCODE_BYTES} (EIP-3860)"
        )
    if call.max_fee_per_gas is not None and (call.max_priority_fee_per_gas or 0) > call.max_fee_per_gas:
        raise PriorityFeeAboveMaxFee(
            f"{where}: max priority fee per gas ({call.max_priority_fee_per_gas}) is higher "
            f"than max fee per gas ({call.max_fee_per_gas})"
        )
    fee_cap = call.gas_price if call.gas_price is not None else call.max_fee_per_gas or 0
    if (validation or call.pays_fees) and fee_cap < base_fee:
        raise FeeTooLow(f"{where}: max fee per gas {fee_cap} is below the block's base fee {base_fee}")
    if validation:
        account_nonce = state.get_nonce(call.sender)
        if tx.nonce < account_nonce:
            raise NonceTooLow(f"{where}: nonce too low: next nonce {account_nonce}, call nonce {tx.nonce}")
        if tx.nonce > account_nonce:
            raise NonceTooHigh(f"{where}: nonce too high: next nonce {account_nonce}, call nonce {tx.nonce}")
        refusal = refusal_of(state, call.sender, call.to is None)
        if refusal is not None:
            raise NotPermitted(f"{where}: {refusal}")
    balance = state.get_balance(call.sender)
    cost = tx.gas * fee_cap + call.value if validation or call.pays_fees else call.value
    if balance < cost:
        raise InsufficientFunds(
            f"{where}: insufficient funds for gas * price + value: balance {balance}, cost {cost}"
        )


@dataclass
class _Block:
    """A simulated block while its calls run."""

    header: BlockHeaderAPI
    state: StateAPI
    free_context: Any
    """The execution context with a base fee of zero, for calls that pay no fees."""
    gas_used: int = 0
    log_count: int = 0


class _Simulator:
    def __init__(
        self, request: SimulationRequest, params: ChainParams, cache: NodeCache, reader: Reader
    ) -> None:
        self._reader = reader
        self._request = request
        self._params = params
        self._overlay = StateOverlay(cache)
        self._gas_left = MAX_GAS

    def run_call(self, block: _Block, call: SimulatedCall, where: str) -> tuple[CallResult, ReceiptAPI]:
        header, state = block.header, block.state
        block_gas_left = header.gas_limit - block.gas_used
        gas = call.gas if call.gas is not None else min(block_gas_left, self._gas_left)
        if gas > block_gas_left:
            raise GasLimitExceeded(
                f"{where}: block gas limit reached: the call asks for {gas} gas, "
                f"{block_gas_left} of the block's {header.gas_limit} are left"
            )
        if gas > self._gas_left or self._gas_left == 0:
            raise LimitExceeded(
                f"{where}: the calls of one request may use at most {MAX_GAS} gas in all; "
                f"{self._gas_left} are left and the call asks for {gas}"
            )
        validation = self._request.validation
        if call.nonce is not None and not validation:
            state.set_nonce(call.sender, call.nonce)
        nonce = call.nonce if call.nonce is not None else state.get_nonce(call.sender)
        request = CallRequest(
            sender=call.sender,
            to=call.to,
            gas=gas,
            value=call.value,
            data=call.data,
            gas_price=call.gas_price,
            max_fee_per_gas=call.max_fee_per_gas,
            max_priority_fee_per_gas=call.max_priority_fee_per_gas,
            access_list=call.access_list,
            nonce=nonce,
        )
        tx = make_call_transaction(request, chain_id=self._params.chain_id, nonce=nonce, gas=gas)
        _check_call(state, tx, call, header.base_fee_per_gas, validation, where)
        free = not validation and not call.pays_fees
        context = state.execution_context
        state.lock_changes()
        try:
            if free:
                state.execution_context = block.free_context
            computation = state.apply_transaction(tx)
        except ValidationError as exc:
            raise InvalidRequest(f"{where}: invalid call: {exc}") from exc
        finally:
            state.execution_context = context
        gas_used = VM.finalize_gas_used(tx, computation)
        block.gas_used += gas_used
        self._gas_left = max(0, self._gas_left - gas_used)
        failed = computation.is_error
        status = EIP658_TRANSACTION_STATUS_CODE_FAILURE if failed else EIP658_TRANSACTION_STATUS_CODE_SUCCESS
        signed = _signed_form(request, self._params.chain_id, nonce, gas)
        receipt = signed.make_receipt(status, block.gas_used, computation.get_log_entries())
        logs = () if failed else _call_logs(computation, self._request.trace_transfers, block.log_count)
        block.log_count += len(logs)
        error = None
        if failed:
            error = (
                revert_message(bytes(computation.output))
                if isinstance(computation.error, Revert)
                else f"vm execution error: {type(computation.error).__name__} {computation.error}".rstrip()
            )
        result = CallResult(
            transaction=signed.encode(),
            hash=Hash32(signed.hash),
            sender=call.sender,
            status=0 if failed else 1,
            return_data=bytes(computation.output),
            gas_used=gas_used,
            max_used_gas=tx.gas - computation.get_gas_remaining(),
            logs=logs,
            error=error,
            reverted=failed and isinstance(computation.error, Revert),
        )
        return result, receipt

    def run_block(
        self, parent: BlockHeaderAPI, planned: _Planned, ancestors: Sequence[Hash32]
    ) -> tuple[BlockHeaderAPI, SimulatedBlock]:
        overrides = planned.asked.block
        if overrides.base_fee_per_gas is not None:
            base_fee = overrides.base_fee_per_gas
        elif self._request.validation:
            base_fee = next_base_fee(parent)
        else:
            base_fee = 0
        template = VM.create_header_from_parent(
            parent,
            coinbase=overrides.fee_recipient if overrides.fee_recipient is not None else parent.coinbase,
            timestamp=planned.time,
            gas_limit=overrides.gas_limit if overrides.gas_limit is not None else parent.gas_limit,
            extra_data=b"",
            mix_hash=overrides.prev_randao if overrides.prev_randao is not None else parent.hash,
        )
        header = template.copy(base_fee_per_gas=base_fee)
        chain = self._params.context
        context = VM.create_execution_context(header, tuple(ancestors), chain)
        free_context = VM.create_execution_context(header.copy(base_fee_per_gas=0), tuple(ancestors), chain)
        state = VM.get_state_class()(self._overlay, context, parent.state_root)
        state.visibility = self._reader.visibility()
        apply_overrides(state, planned.asked.state)
        if self._request.trace_transfers:
            base = state.computation_class
            state.computation_class = type(f"Traced{base.__name__}", (_TransferTracing, base), {})  # type: ignore[misc]
        block = _Block(header, state, free_context)
        results, raws, receipts = [], [], []
        for index, call in enumerate(planned.asked.calls):
            result, receipt = self.run_call(block, call, f"block {planned.position}, call {index}")
            results.append(result)
            raws.append(result.transaction)
            receipts.append(receipt)
        state.persist()
        bloom = BloomFilter()
        for receipt in receipts:
            bloom |= receipt.bloom
        sealed = header.copy(
            state_root=state.state_root,
            transaction_root=ordered_trie_root(raws),
            receipt_root=ordered_trie_root([receipt.encode() for receipt in receipts]),
            bloom=int(bloom),
            gas_used=block.gas_used,
        )
        return sealed, SimulatedBlock(header=encode_header(sealed), calls=tuple(results))


def simulate(
    base: BlockHeaderAPI,
    request: SimulationRequest,
    params: ChainParams,
    cache: NodeCache,
    ancestor_hashes: Sequence[Hash32] = (),
    reader: Reader = ANONYMOUS,
) -> tuple[SimulatedBlock, ...]:
    """The blocks `request` asks for, built on `base` (see the module's rules).

    `ancestor_hashes` are the hashes of `base`'s ancestors, newest first, which BLOCKHASH
    reads together with `base`'s and the simulated blocks' own. Confidential contracts
    are as `reader` may see them.
    """
    planned = _plan(base, request.blocks)
    simulator = _Simulator(request, params, cache, reader)
    hashes = [Hash32(base.hash), *ancestor_hashes][:MAX_ANCESTORS]
    parent = base
    answer = []
    for item in planned:
        header, built = simulator.run_block(parent, item, hashes)
        answer.append(built)
        parent = header
        hashes = [Hash32(header.hash), *hashes][:MAX_ANCESTORS]
    return tuple(answer)
