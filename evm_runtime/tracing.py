"""Execution traces, as geth's debug tracers give them.

Two tracers run inside py-evm by replacing a state's computation class with a subclass
that reports to a `Tracer` (`traced`): every message frame is entered and left through
`apply_message` / `apply_create_message`, and every opcode through a wrapped opcode table.

- The **struct logger** (no tracer named) records one `StructStep` per executed opcode:
  its position, the gas left before it and what it cost, the call depth, the refund
  counter, and, as the options ask, the stack, memory, return data and the storage the
  current contract touched so far (on SLOAD and SSTORE only). A call or create costs
  what the caller is charged up to the moment the callee starts, forwarded gas included.
- The **call tracer** (`callTracer`) records one `CallFrame` per message: its kind
  (CALL, STATICCALL, DELEGATECALL, CALLCODE, CREATE, CREATE2), caller, callee, value,
  gas given and used, input, output, error and revert reason, the frames it called and,
  with `with_log`, the logs it emitted (a failed frame's logs, and its callees', are
  dropped, as the state changes that made them are).

The outermost frame carries the transaction's gas limit and its gas used as the receipt
has it. Traces are bounded: the struct logger records at most `MAX_STRUCT_STEPS` steps and
`MAX_CAPTURED_BYTES` of stack, memory, storage and return data, else the trace fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI, MessageAPI, StateAPI
from eth.exceptions import (
    ContractCreationCollision,
    FullStack,
    Halt,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
    Revert,
    StackDepthLimit,
    VMError,
    WriteProtection,
)
from eth.vm.logic.invalid import InvalidOpcode

from .calls import CallContext, revert_reason
from .chain import VM, BlockState, ChainParams
from .confidential import transaction_visibility
from .exceptions import InvalidRequest, LimitExceeded
from .state_db import NodeCache, StateOverlay
from .transactions import CallRequest, DecodedTransaction
from .types import Address, Hash32

STRUCT_LOGGER = ""
CALL_TRACER = "callTracer"
TRACERS = (STRUCT_LOGGER, CALL_TRACER)
MAX_STRUCT_STEPS = 100_000
"""The most opcode steps one struct-logger trace records (geth has no bound)."""
MAX_CAPTURED_BYTES = 64 * 2**20
"""The most stack, memory, storage and return data bytes one struct-logger trace keeps."""

_CALL_KINDS = {
    0xF0: "CREATE",
    0xF1: "CALL",
    0xF2: "CALLCODE",
    0xF4: "DELEGATECALL",
    0xF5: "CREATE2",
    0xFA: "STATICCALL",
}
_SLOAD, _SSTORE = 0x54, 0x55
_LOGS = range(0xA0, 0xA5)
_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (Revert, "execution reverted"),
    (OutOfGas, "out of gas"),
    (InvalidJumpDestination, "invalid jump destination"),
    (InsufficientStack, "stack underflow"),
    (FullStack, "stack limit reached 1024"),
    (StackDepthLimit, "max call depth exceeded"),
    (WriteProtection, "write protection"),
    (ContractCreationCollision, "contract address collision"),
)


@dataclass(frozen=True, slots=True)
class TraceOptions:
    """geth's TraceConfig: the tracer, and what the struct logger or call tracer keep."""

    tracer: str = STRUCT_LOGGER
    disable_stack: bool = False
    disable_storage: bool = False
    enable_memory: bool = False
    enable_return_data: bool = False
    limit: int = 0
    only_top_call: bool = False
    with_log: bool = False

    def __post_init__(self) -> None:
        if self.tracer not in TRACERS:
            raise InvalidRequest(
                f"tracer {self.tracer!r} is not supported: use callTracer, or no tracer for the struct logger"
            )
        if not 0 <= self.limit <= MAX_STRUCT_STEPS:
            raise InvalidRequest(f"limit is from 0 (no limit) to {MAX_STRUCT_STEPS} steps, not {self.limit}")


@dataclass(slots=True)
class StructStep:
    """One executed opcode (the struct logger's `StructLog`)."""

    pc: int
    op: str
    gas: int
    gas_cost: int
    depth: int
    refund: int
    stack: tuple[int, ...] | None = None
    memory: bytes | None = None
    storage: tuple[tuple[int, int], ...] | None = None
    return_data: bytes | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CallLog:
    address: Address
    topics: tuple[bytes, ...]
    data: bytes
    position: int
    """How many calls the frame had made when it emitted the log."""


@dataclass(slots=True)
class CallFrame:
    """One message (the call tracer's frame)."""

    kind: str
    sender: Address
    to: Address
    value: int | None
    gas: int
    input: bytes
    gas_used: int = 0
    output: bytes = b""
    error: str | None = None
    revert_reason: str | None = None
    calls: list[CallFrame] = field(default_factory=list)
    logs: list[CallLog] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TransactionTrace:
    """A transaction's trace: `steps` from the struct logger, or `call` from the call tracer."""

    tx_hash: Hash32 | None
    """None for a call."""
    gas_used: int
    failed: bool
    output: bytes
    steps: tuple[StructStep, ...] = ()
    call: CallFrame | None = None


def error_text(error: BaseException) -> str:
    """What geth calls an execution error."""
    for kind, text in _ERRORS:
        if isinstance(error, kind):
            return text
    if isinstance(error, InvalidInstruction):
        return f"invalid opcode: {error}"
    return str(error) or type(error).__name__


@dataclass(slots=True)
class _Frame:
    message: MessageAPI
    depth: int
    call: CallFrame | None
    computation: ComputationAPI | None = None
    next_pc: int = 0
    storage: dict[int, int] = field(default_factory=dict)


class Tracer:
    """Collects one transaction's trace from the hooks `traced` installs."""

    def __init__(self, options: TraceOptions) -> None:
        self.options = options
        self.steps: list[StructStep] = []
        self.root: CallFrame | None = None
        self._struct = options.tracer == STRUCT_LOGGER
        self._frames: list[_Frame] = []
        self._pending: StructStep | None = None
        self._refund = 0
        self._refund_changed = False
        self._captured = 0

    @property
    def in_frame(self) -> MessageAPI | None:
        return self._frames[-1].message if self._frames else None

    # -- frames ---------------------------------------------------------------------------

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> None:
        if parent is not None and self._pending is not None:
            # A call or create costs what the caller paid up to here, forwarded gas too.
            self._pending.gas_cost = self._pending.gas - parent.get_gas_remaining()
            self._pending = None
        call = None if self._struct else self._call_frame(message, parent)
        if call is not None:
            if not self._frames:
                self.root = call
            elif not self.options.only_top_call:
                caller = self._frames[-1].call
                assert caller is not None
                caller.calls.append(call)
        self._frames.append(_Frame(message, message.depth + 1, call))

    def _call_frame(self, message: MessageAPI, parent: ComputationAPI | None) -> CallFrame:
        kind = "CREATE" if message.is_create else "CALL"
        if parent is not None:
            kind = _CALL_KINDS.get(parent.code[parent.code.program_counter - 1], kind)
        if message.is_create:
            callee = message.storage_address
        elif kind in ("DELEGATECALL", "CALLCODE"):
            callee = message.code_address
        else:
            callee = message.to
        caller = self._frames[-1].message.storage_address if self._frames else message.sender
        return CallFrame(
            kind=kind,
            sender=Address(caller),
            to=Address(callee),
            value=None if kind == "STATICCALL" else message.value,
            gas=message.gas,
            input=bytes(message.code if message.is_create else message.data),
        )

    def leave(self, computation: ComputationAPI) -> None:
        frame = self._frames.pop()
        self._refund_changed = True
        call = frame.call
        if call is None:
            return
        call.gas_used = frame.message.gas - computation.get_gas_remaining()
        call.output = bytes(computation.output)
        if computation.is_error:
            call.error = error_text(computation.error)
            if isinstance(computation.error, Revert):
                call.revert_reason = revert_reason(call.output)
            else:
                call.output = b""

    # -- opcodes --------------------------------------------------------------------------

    def before(self, computation: ComputationAPI, opcode: int, mnemonic: str) -> None:
        frame = self._frames[-1]
        frame.computation = computation
        if not self._struct:
            return
        options = self.options
        self._pending = None
        if options.limit and len(self.steps) >= options.limit:
            return
        if len(self.steps) >= MAX_STRUCT_STEPS:
            raise LimitExceeded(
                f"the trace has more than {MAX_STRUCT_STEPS} steps: pass a `limit`, or use the callTracer"
            )
        if self._refund_changed:
            self._refund = sum(f.computation.get_gas_refund() for f in self._frames if f.computation)
            self._refund_changed = False
        stack = computation._stack.values  # type: ignore[attr-defined]
        step = StructStep(
            pc=frame.next_pc,
            op=mnemonic,
            gas=computation.get_gas_remaining(),
            gas_cost=0,
            depth=frame.depth,
            refund=self._refund,
        )
        if not options.disable_stack:
            step.stack = tuple(_word(value) for value in stack)
        if options.enable_memory:
            step.memory = bytes(computation._memory._bytes)  # type: ignore[attr-defined]
        if options.enable_return_data:
            step.return_data = bytes(computation.return_data)
        if opcode in (_SLOAD, _SSTORE) and stack and not options.disable_storage:
            slot = _word(stack[-1])
            if opcode == _SSTORE:
                frame.storage[slot] = _word(stack[-2]) if len(stack) > 1 else 0
            else:
                frame.storage[slot] = computation.state.get_storage(frame.message.storage_address, slot)
            step.storage = tuple(frame.storage.items())
        self._captured += 32 * (len(step.stack or ()) + 2 * len(step.storage or ()))
        self._captured += len(step.memory or b"") + len(step.return_data or b"")
        if self._captured > MAX_CAPTURED_BYTES:
            raise LimitExceeded(
                f"the trace keeps more than {MAX_CAPTURED_BYTES >> 20} MiB of stack, memory and "
                "storage: pass a `limit`, disable what you do not need, or use the callTracer"
            )
        self.steps.append(step)
        self._pending = step

    def after(self, computation: ComputationAPI, opcode: int, error: BaseException | None) -> None:
        frame = self._frames[-1]
        frame.next_pc = computation.code.program_counter
        if opcode == _SSTORE:
            self._refund_changed = True
        if frame.call is not None:
            if opcode in _LOGS and error is None and self.options.with_log:
                _, address, topics, data = computation._log_entries[-1]  # type: ignore[attr-defined]
                frame.call.logs.append(
                    CallLog(
                        Address(address),
                        tuple(topic.to_bytes(32, "big") for topic in topics),
                        bytes(data),
                        len(frame.call.calls),
                    )
                )
            return
        step, self._pending = self._pending, None
        if step is None:
            return
        step.gas_cost = step.gas - computation.get_gas_remaining()
        if error is not None and not isinstance(error, (Halt, Revert)):
            step.error = error_text(error)

    # -- the result -----------------------------------------------------------------------

    def result(
        self, tx_hash: Hash32 | None, gas_limit: int, gas_used: int, computation: ComputationAPI
    ) -> TransactionTrace:
        """The transaction's trace, once `computation` (its outermost) has finished."""
        output = bytes(computation.output)
        root = self.root
        if root is not None:
            root.gas, root.gas_used = gas_limit, gas_used
            _drop_failed_logs(root)
        return TransactionTrace(
            tx_hash=tx_hash,
            gas_used=gas_used,
            failed=computation.is_error,
            output=output,
            steps=tuple(self.steps),
            call=root,
        )


def _drop_failed_logs(frame: CallFrame, failed: bool = False) -> None:
    failed = failed or frame.error is not None
    if failed:
        frame.logs.clear()
    for call in frame.calls:
        _drop_failed_logs(call, failed)


def _word(value: int | bytes) -> int:
    return value if isinstance(value, int) else int.from_bytes(value, "big")


# -- the traced computation ---------------------------------------------------------------


def _mnemonic(opcode: int, opcode_fn: Any) -> str:
    name = getattr(opcode_fn, "mnemonic", None) or getattr(
        getattr(opcode_fn, "__wrapped__", None), "mnemonic", None
    )
    if name:
        return str(name)
    return "INVALID" if opcode == 0xFE else f"opcode {opcode:#x} not defined"


def _traced_opcode(tracer: Tracer, opcode: int, opcode_fn: Callable[..., None]) -> Callable[..., None]:
    mnemonic = _mnemonic(opcode, opcode_fn)

    def run(computation: ComputationAPI) -> None:
        tracer.before(computation, opcode, mnemonic)
        try:
            opcode_fn(computation=computation)
        except VMError as error:  # Halt (STOP, RETURN, SELFDESTRUCT) is one too
            tracer.after(computation, opcode, error)
            raise
        tracer.after(computation, opcode, None)

    return run


def traced(state: StateAPI, tracer: Tracer) -> None:
    """Make `state` run its messages and opcodes through `tracer` from now on."""
    base = type(state).computation_class
    opcodes = {
        opcode: _traced_opcode(tracer, opcode, base.opcodes.get(opcode) or InvalidOpcode(opcode))
        for opcode in range(256)
        if tracer.options.tracer == STRUCT_LOGGER or opcode in _LOGS
    }

    class TracedComputation(base):  # type: ignore[valid-type, misc]
        @classmethod
        def apply_message(
            cls,
            state: StateAPI,
            message: MessageAPI,
            transaction_context: Any,
            parent_computation: ComputationAPI | None = None,
        ) -> ComputationAPI:
            if tracer.in_frame is message:  # the message part of apply_create_message
                return super().apply_message(state, message, transaction_context, parent_computation)
            return _framed(super().apply_message, state, message, transaction_context, parent_computation)

        @classmethod
        def apply_create_message(
            cls,
            state: StateAPI,
            message: MessageAPI,
            transaction_context: Any,
            parent_computation: ComputationAPI | None = None,
        ) -> ComputationAPI:
            return _framed(
                super().apply_create_message, state, message, transaction_context, parent_computation
            )

    def _framed(
        apply: Callable[..., ComputationAPI],
        state: StateAPI,
        message: MessageAPI,
        transaction_context: Any,
        parent: ComputationAPI | None,
    ) -> ComputationAPI:
        tracer.enter(message, parent)
        computation = apply(state, message, transaction_context, parent_computation=parent)
        tracer.leave(computation)
        return computation

    TracedComputation.opcodes = {**base.opcodes, **opcodes}
    state.computation_class = TracedComputation  # type: ignore[misc]


# -- replays ------------------------------------------------------------------------------


def trace_block(
    parent: BlockHeaderAPI,
    header: BlockHeaderAPI,
    transactions: Sequence[DecodedTransaction],
    params: ChainParams,
    cache: NodeCache,
    ancestor_hashes: Iterable[Hash32],
    options: TraceOptions,
    only: Hash32 | None = None,
) -> list[TransactionTrace]:
    """Replay the block `header` on `parent`'s state as it was built, tracing each of its
    `transactions`, or only the one `only` names (those before it run untraced)."""
    context = VM.create_execution_context(header, tuple(ancestor_hashes), params.context)
    state = BlockState(StateOverlay(cache), context, parent.state_root)
    traces: list[TransactionTrace] = []
    for item in transactions:
        tx = item.tx
        tracer = None
        if only is None or tx.hash == only:
            tracer = Tracer(options)
            traced(state, tracer)
        state.lock_changes()
        state.visibility = transaction_visibility(state, item.sender, tx.to or None, item.private_for)
        computation = state.apply_transaction(tx)
        state.visibility = None
        if tracer is not None:
            gas_used = VM.finalize_gas_used(tx, computation)
            traces.append(tracer.result(Hash32(tx.hash), tx.gas, gas_used, computation))
            if only is not None:
                break
    return traces


def trace_call(context: CallContext, call: CallRequest, options: TraceOptions) -> TransactionTrace:
    """Trace `call` as `context.apply` runs it (a failed call is a trace, not an error)."""
    tracer = Tracer(options)
    tx, computation = context.apply(call, lambda state: traced(state, tracer))
    return tracer.result(None, tx.gas, VM.finalize_gas_used(tx, computation), computation)
