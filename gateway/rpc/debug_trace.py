"""Tracing: debug_traceTransaction, debug_traceCall, debug_traceBlockByNumber/ByHash.

The trace config is geth's: no `tracer` gives the struct logger (`disableStack`,
`disableStorage`, `enableMemory`, `enableReturnData`, `limit`), `"callTracer"` the call
tree (`tracerConfig`: `onlyTopCall`, `withLog`). `timeout` and `debug` are accepted and
ignored: traces are bounded by size instead (`evm_runtime.tracing`). Results are shaped
as geth shapes them; the struct logger's as the execution-apis spec's OpcodeTransactionTrace.
"""

from __future__ import annotations

from typing import Any

from evm_runtime.exceptions import NotFound
from evm_runtime.tracing import (
    MAX_STRUCT_STEPS,
    TRACERS,
    CallFrame,
    StructStep,
    TraceOptions,
    TransactionTrace,
)
from evm_runtime.types import Hash32

from .. import params as p
from ..caller import current_token
from ..hexcodec import address, data, quantity
from ..node import Node
from .registry import BLOCK, Param, rpc
from .state import call_request, check_call_gas

_STRUCT_FLAGS = {
    "disableStack": "disable_stack",
    "disableStorage": "disable_storage",
    "enableMemory": "enable_memory",
    "enableReturnData": "enable_return_data",
}
_CALL_FLAGS = {"onlyTopCall": "only_top_call", "withLog": "with_log"}
_IGNORED = {"timeout", "debug", "reexec"}


def _flags(value: dict[str, Any], names: dict[str, str], where: str) -> dict[str, bool]:
    flags = {}
    for key, field in names.items():
        if key in value and value[key] is not None:
            if not isinstance(value[key], bool):
                raise ValueError(f"{where}{key} must be true or false, got {value[key]!r}")
            flags[field] = value[key]
    return flags


def trace_config(value: Any) -> TraceOptions:
    """geth's TraceConfig."""
    if value is None:
        return TraceOptions()
    if not isinstance(value, dict):
        raise ValueError(f"expected a trace config object, got {type(value).__name__}")
    known = {"tracer", "tracerConfig", "limit", *_STRUCT_FLAGS, *_IGNORED}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"unknown trace config fields {unknown}; known: {sorted(known)}")
    tracer = value.get("tracer") or ""
    if tracer not in TRACERS:
        raise ValueError(
            f"tracer {tracer!r} is not supported: use callTracer, or no tracer for the struct logger"
        )
    limit = value.get("limit") or 0
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_STRUCT_STEPS:
        raise ValueError(f"limit is a number of steps from 0 (no limit) to {MAX_STRUCT_STEPS}, not {limit!r}")
    options: dict[str, Any] = {"tracer": tracer, "limit": limit, **_flags(value, _STRUCT_FLAGS, "")}
    tracer_config = value.get("tracerConfig") or {}
    if not isinstance(tracer_config, dict):
        raise ValueError("tracerConfig must be an object")
    unknown = sorted(set(tracer_config) - set(_CALL_FLAGS))
    if unknown:
        raise ValueError(f"unknown tracerConfig fields {unknown}; the callTracer takes {sorted(_CALL_FLAGS)}")
    options.update(_flags(tracer_config, _CALL_FLAGS, "tracerConfig."))
    return TraceOptions(**options)


CONFIG = Param("config", trace_config, required=False, default=TraceOptions())


# -- results ------------------------------------------------------------------------------


def _step(step: StructStep) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "pc": step.pc,
        "op": step.op,
        "gas": step.gas,
        "gasCost": step.gas_cost,
        "depth": step.depth,
        "refund": step.refund,
    }
    if step.stack is not None:
        entry["stack"] = [quantity(value) for value in step.stack]
    if step.memory is not None:
        memory = step.memory
        entry["memory"] = [data(memory[offset : offset + 32]) for offset in range(0, len(memory), 32)]
    if step.storage is not None:
        entry["storage"] = {
            data(slot.to_bytes(32, "big")): data(value.to_bytes(32, "big")) for slot, value in step.storage
        }
    if step.return_data is not None:
        entry["returnData"] = data(step.return_data)
    if step.error is not None:
        entry["error"] = step.error
    return entry


def _frame(frame: CallFrame) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": frame.kind,
        "from": address(frame.sender),
        "to": address(frame.to),
        "gas": quantity(frame.gas),
        "gasUsed": quantity(frame.gas_used),
        "input": data(frame.input),
    }
    if frame.value is not None:
        entry["value"] = quantity(frame.value)
    if frame.output:
        entry["output"] = data(frame.output)
    if frame.error is not None:
        entry["error"] = frame.error
    if frame.revert_reason is not None:
        entry["revertReason"] = frame.revert_reason
    if frame.calls:
        entry["calls"] = [_frame(call) for call in frame.calls]
    if frame.logs:
        entry["logs"] = [
            {
                "address": address(log.address),
                "topics": [data(topic) for topic in log.topics],
                "data": data(log.data),
                "position": quantity(log.position),
            }
            for log in frame.logs
        ]
    return entry


def trace_result(trace: TransactionTrace) -> dict[str, Any]:
    """A transaction's trace as geth answers it."""
    if trace.call is not None:
        return _frame(trace.call)
    return {
        "gas": trace.gas_used,
        "failed": trace.failed,
        "returnValue": data(trace.output),
        "structLogs": [_step(step) for step in trace.steps],
    }


def _block_traces(node: Node, block_number: int, options: TraceOptions) -> list[dict[str, Any]]:
    traces = node.enclave.trace_block(block_number, options, None, current_token())
    return [{"txHash": data(trace.tx_hash or b""), "result": trace_result(trace)} for trace in traces]


# -- methods ------------------------------------------------------------------------------


@rpc("debug_traceTransaction", Param("hash", p.hash32), CONFIG)
def debug_trace_transaction(node: Node, tx_hash: bytes, options: TraceOptions) -> dict[str, Any]:
    stored = node.store.transaction(tx_hash)
    found = stored if stored is not None else node.confidential_transaction(tx_hash)
    if found is None:
        raise NotFound(f"transaction 0x{tx_hash.hex()} not found (a waiting transaction has no trace yet)")
    (trace,) = node.enclave.trace_block(found.block_number, options, Hash32(tx_hash), current_token())
    return trace_result(trace)


@rpc("debug_traceCall", Param("transaction", p.call_object), BLOCK, CONFIG)
def debug_trace_call(
    node: Node, call: p.CallObject, ref: p.BlockRef, options: TraceOptions
) -> dict[str, Any]:
    check_call_gas(node, call)
    trace = node.enclave.trace_call(
        call_request(node, call), node.block_number_of(ref), options, current_token()
    )
    return trace_result(trace)


@rpc("debug_traceBlockByNumber", Param("block", p.block_number_or_tag), CONFIG)
def debug_trace_block_by_number(node: Node, ref: p.BlockRef, options: TraceOptions) -> list[dict[str, Any]]:
    return _block_traces(node, node.block(ref).number, options)


@rpc("debug_traceBlockByHash", Param("hash", p.hash32), CONFIG)
def debug_trace_block_by_hash(node: Node, block_hash: bytes, options: TraceOptions) -> list[dict[str, Any]]:
    return _block_traces(node, node.block(p.BlockRef(hash=block_hash)).number, options)
