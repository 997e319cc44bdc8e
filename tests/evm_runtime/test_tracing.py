"""Execution traces (`evm_runtime.tracing`): the struct logger and the call tracer."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import pytest
from eth_hash.auto import keccak

from evm_runtime import tracing
from evm_runtime.block_builder import BuiltBlock
from evm_runtime.calls import CallContext, state_at
from evm_runtime.chain import GenesisAccount
from evm_runtime.exceptions import InvalidRequest, LimitExceeded
from evm_runtime.tracing import TraceOptions, TransactionTrace, trace_block, trace_call
from evm_runtime.transactions import CallRequest, DecodedTransaction
from evm_runtime.types import Address
from tests.support.artifacts import load_artifact

from .chainkit import ACCOUNTS, ETHER, MemoryChain, address_of, calldata, decoded

ALICE = ACCOUNTS[0]
STRUCT_LOGGER = TraceOptions()
CALL_TRACER = TraceOptions(tracer="callTracer", with_log=True)

# Hand-written contracts, installed at genesis.
LOG_THEN_REVERT = Address(b"\x10" * 20)  # LOG1(topic 0xaa) then REVERT
NO_STOP = Address(b"\x11" * 20)  # PUSH1 1 PUSH1 1 ADD: runs off the end of its code
DELEGATOR = Address(b"\x12" * 20)  # DELEGATECALL to LOG_THEN_REVERT... then CALLCODE to NO_STOP
CODES = {
    LOG_THEN_REVERT: bytes.fromhex("60aa60006000a160006000fd"),
    NO_STOP: bytes.fromhex("6001600101"),
    DELEGATOR: bytes.fromhex(
        "60006000600060007310" + "10" * 19 + "5af450"  # DELEGATECALL(gas, LOG_THEN_REVERT, 0, 0, 0, 0); POP
        "600060006000600060007311" + "11" * 19 + "5af250"  # CALLCODE(gas, NO_STOP, 0, 0, 0, 0, 0); POP
    ),
}


@pytest.fixture(scope="module")
def chain() -> MemoryChain:
    alloc = {address_of(account): GenesisAccount(balance=1_000 * ETHER) for account in ACCOUNTS}
    alloc.update({address: GenesisAccount(code=code) for address, code in CODES.items()})
    return MemoryChain(alloc=alloc)


@pytest.fixture(scope="module")
def probe(chain: MemoryChain) -> Address:
    built = chain.build(
        [decoded(ALICE, nonce=0, to=None, data=load_artifact("Probe")["bytecode"], gas=3_000_000)]
    )
    address = built.transactions[0].contract_address
    assert address is not None
    return address


def build_and_trace(
    chain: MemoryChain, batch: Sequence[DecodedTransaction], options: TraceOptions = STRUCT_LOGGER
) -> tuple[BuiltBlock, list[TransactionTrace]]:
    parent = chain.head
    ancestors = list(reversed(chain.hashes[: parent.block_number + 1]))
    built = chain.build(batch)
    traces = trace_block(parent, built.header, batch, chain.params, chain.cache, ancestors, options)
    return built, traces


def next_nonce(chain: MemoryChain) -> int:
    return state_at(chain.head, chain.params, chain.cache).get_nonce(address_of(ALICE))


def tx(
    chain: MemoryChain, to: Address | None, data: bytes = b"", *, nonce_offset: int = 0, gas: int = 500_000
) -> DecodedTransaction:
    return decoded(ALICE, nonce=next_nonce(chain) + nonce_offset, to=to, data=data, gas=gas)


# -- the struct logger --------------------------------------------------------------------


def test_struct_logs_agree_with_the_receipts_and_chain_their_gas(chain: MemoryChain, probe: Address) -> None:
    batch = [
        tx(chain, probe, calldata("set(uint256)", 7)),
        tx(chain, probe, calldata("spawnChild(uint256)", 1), nonce_offset=1),
        tx(chain, probe, calldata("revertWithReason()"), nonce_offset=2),
    ]
    built, traces = build_and_trace(chain, batch)
    for trace, executed in zip(traces, built.transactions, strict=True):
        assert trace.tx_hash == executed.hash
        assert trace.gas_used == executed.gas_used
        assert trace.failed == (executed.status == 0)
        steps = trace.steps
        assert steps[0].pc == 0 and steps[0].depth == 1 and steps[0].gas == executed_gas_left(batch, trace)
        for step, following in pairwise(steps):
            if following.depth == step.depth:  # no call started or ended between them
                assert following.gas == step.gas - step.gas_cost, (step, following)
    reverted = traces[2]
    assert reverted.steps[-1].op == "REVERT" and reverted.steps[-1].error is None
    assert b"reason" in reverted.output or reverted.output[:4] == bytes.fromhex("08c379a0")


def executed_gas_left(batch: Sequence[DecodedTransaction], trace: TransactionTrace) -> int:
    """The gas the outermost frame starts with: the limit less the intrinsic gas."""
    item = next(item for item in batch if item.tx.hash == trace.tx_hash)
    return item.tx.gas - item.tx.intrinsic_gas


def test_a_call_step_costs_what_the_caller_paid_including_the_forwarded_gas(
    chain: MemoryChain, probe: Address
) -> None:
    _, (trace,) = build_and_trace(chain, [tx(chain, probe, calldata("spawnChild(uint256)", 2))])
    steps = trace.steps
    for index, step in enumerate(steps):
        if step.op in ("CALL", "CREATE") and steps[index + 1].depth == 2:
            callee_start = steps[index + 1].gas
            assert step.gas_cost > callee_start  # the callee's gas is part of the cost
            back = next(later for later in steps[index + 1 :] if later.depth == 1)
            unused = back.gas - (step.gas - step.gas_cost)
            assert 0 <= unused <= callee_start  # what came back is at most what was given


def test_storage_is_shown_on_sload_and_sstore_only_and_the_refund_counts(
    chain: MemoryChain, probe: Address
) -> None:
    _, traces = build_and_trace(
        chain,
        [
            tx(chain, probe, calldata("set(uint256)", 9)),
            tx(chain, probe, calldata("set(uint256)", 0), nonce_offset=1),
        ],
    )
    writes = [step for step in traces[0].steps if step.op == "SSTORE"]
    assert writes and dict(writes[0].storage or ())[0] == 9
    assert all(step.storage is None for step in traces[0].steps if step.op not in ("SLOAD", "SSTORE"))
    clearing = traces[1].steps
    index = next(i for i, step in enumerate(clearing) if step.op == "SSTORE")
    assert dict(clearing[index].storage or ())[0] == 0
    assert clearing[index].refund == 0 and clearing[index + 1].refund > 0  # clearing a slot refunds

    _, (read,) = build_and_trace(chain, [tx(chain, probe, calldata("set(uint256)", 5))])
    loads = [step for step in read.steps if step.op == "SLOAD"]
    for load in loads:
        assert load.storage is not None


def test_options_leave_out_what_was_not_asked_for(chain: MemoryChain, probe: Address) -> None:
    options = TraceOptions(
        disable_stack=True, disable_storage=True, enable_memory=True, enable_return_data=True
    )
    _, (trace,) = build_and_trace(chain, [tx(chain, probe, calldata("set(uint256)", 3))], options)
    assert all(step.stack is None and step.storage is None for step in trace.steps)
    assert all(step.memory is not None and step.return_data is not None for step in trace.steps)
    assert any(len(step.memory or b"") >= 96 for step in trace.steps)


def test_limit_keeps_the_first_steps_and_the_bound_refuses_bigger_traces(
    chain: MemoryChain, probe: Address, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (limited,) = build_and_trace(
        chain, [tx(chain, probe, calldata("burnGas(uint256)", 50))], TraceOptions(limit=10)
    )
    assert len(limited.steps) == 10 and limited.gas_used > 21_000

    monkeypatch.setattr(tracing, "MAX_STRUCT_STEPS", 100)
    batch = [tx(chain, probe, calldata("burnGas(uint256)", 50))]
    with pytest.raises(LimitExceeded, match="more than 100 steps"):
        build_and_trace(chain, batch)


def test_a_run_off_the_end_stops_after_the_code_and_a_failing_step_says_why(chain: MemoryChain) -> None:
    _, (trace,) = build_and_trace(chain, [tx(chain, NO_STOP)])
    assert [(step.pc, step.op) for step in trace.steps] == [
        (0, "PUSH1"),
        (2, "PUSH1"),
        (4, "ADD"),
        (5, "STOP"),
    ]
    assert trace.steps[-1].stack == (2,)

    _, (starved,) = build_and_trace(chain, [tx(chain, NO_STOP, gas=21_005)])
    assert starved.failed and starved.steps[-1].error == "out of gas"


def test_unknown_tracers_and_limits_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="prestateTracer"):
        TraceOptions(tracer="prestateTracer")
    with pytest.raises(InvalidRequest, match="limit"):
        TraceOptions(limit=-1)


# -- the call tracer ----------------------------------------------------------------------


def test_the_call_tree_of_a_create_and_a_call(chain: MemoryChain, probe: Address) -> None:
    built, (trace,) = build_and_trace(
        chain, [tx(chain, probe, calldata("spawnChild(uint256)", 1))], CALL_TRACER
    )
    root = trace.call
    assert root is not None
    assert (root.kind, root.sender, root.to, root.gas) == ("CALL", address_of(ALICE), probe, 500_000)
    assert root.gas_used == built.transactions[0].gas_used
    create, ping = root.calls
    assert create.kind == "CREATE" and create.sender == probe and create.output  # the child's code
    assert ping.kind == "CALL" and ping.to == create.to and ping.input[:4] == keccak(b"ping(uint256)")[:4]
    assert [log.position for log in ping.logs] == [0]
    assert [log.position for log in root.logs] == [2]  # after both calls
    assert [log.topics for log in root.logs] == [entry.topics for entry in built.transactions[0].logs[1:]]


def test_create2_staticcall_reverts_and_reasons(chain: MemoryChain, probe: Address) -> None:
    batch = [
        tx(chain, probe, calldata("spawnChild2(bytes32,uint256)", b"\x01" * 32, 1)),
        tx(chain, probe, calldata("tryChildFail()"), nonce_offset=1),
    ]
    _, (spawned, caught) = build_and_trace(chain, batch, CALL_TRACER)
    assert spawned.call is not None and spawned.call.calls[0].kind == "CREATE2"
    assert caught.call is not None
    (failed,) = caught.call.calls
    assert failed.kind == "STATICCALL" and failed.value is None
    assert failed.error == "execution reverted" and failed.revert_reason == "child: failed"
    assert caught.call.error is None and caught.call.logs  # the caller caught it and logged


def test_delegatecall_callcode_and_the_logs_of_failed_frames(chain: MemoryChain) -> None:
    _, (trace,) = build_and_trace(chain, [tx(chain, DELEGATOR)], CALL_TRACER)
    root = trace.call
    assert root is not None and not trace.failed
    delegated, coded = root.calls
    assert (delegated.kind, delegated.to, delegated.sender) == ("DELEGATECALL", LOG_THEN_REVERT, DELEGATOR)
    assert delegated.error == "execution reverted" and delegated.logs == []  # its log was undone
    assert (coded.kind, coded.to) == ("CALLCODE", NO_STOP) and coded.error is None

    _, (top,) = build_and_trace(
        chain, [tx(chain, DELEGATOR)], TraceOptions(tracer="callTracer", only_top_call=True)
    )
    assert top.call is not None and top.call.calls == []


def test_a_call_is_traced_as_the_node_would_run_it(chain: MemoryChain, probe: Address) -> None:
    ancestors = list(reversed(chain.hashes))
    context = CallContext(chain.head, chain.params, chain.cache, ancestors)
    call = CallRequest(sender=address_of(ALICE), to=probe, gas=200_000, data=calldata("revertWithReason()"))
    trace = trace_call(context, call, CALL_TRACER)
    assert trace.failed and trace.tx_hash is None
    assert trace.call is not None and trace.call.error == "execution reverted"
    assert trace.call.gas == 200_000 and 21_000 < trace.call.gas_used < 200_000
    steps = trace_call(context, call, TraceOptions()).steps
    assert steps[-1].op == "REVERT"
