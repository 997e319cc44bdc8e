"""eth_simulateV1's blocks (`evm_runtime.simulation`): built on a stored block, never stored."""

from __future__ import annotations

from typing import Any

import pytest
from eth_hash.auto import keccak

from evm_runtime import exceptions as ex
from evm_runtime.chain import decode_header
from evm_runtime.overrides import AccountOverride, StateOverrides
from evm_runtime.simulation import (
    MAX_BLOCKS,
    MAX_CALLS,
    TRANSFER_LOG_ADDRESS,
    BlockOverrides,
    BlockStateCall,
    SimulatedBlock,
    SimulatedCall,
    SimulationRequest,
    simulate,
)
from evm_runtime.types import Address
from tests.support.artifacts import load_artifact

from .chainkit import ACCOUNTS, ETHER, GWEI, MemoryChain, address_of, calldata, decoded, funded_chain

ALICE, BOB = (address_of(account) for account in ACCOUNTS[:2])
NOBODY = Address(bytes.fromhex("00000000000000000000000000000000000fee00"))
CONTRACT = Address(bytes.fromhex("000000000000000000000000000000000000c0de"))
PREVIOUS_HASH = bytes.fromhex("6001430340" + "60005260206000f3")
"""BLOCKHASH(NUMBER - 1), returned as one word."""
ENVIRONMENT = bytes.fromhex("41600052" + "44602052" + "42604052" + "48606052" + "60806000f3")
"""COINBASE, PREVRANDAO, TIMESTAMP, BASEFEE, returned as four words."""
INVALID = bytes.fromhex("fe")


@pytest.fixture(scope="module")
def deployed() -> tuple[MemoryChain, Address]:
    """A chain with a Probe holding 7."""
    chain = funded_chain(balance=1_000 * ETHER)
    artifact = load_artifact("Probe")
    built = chain.build([decoded(ACCOUNTS[0], nonce=0, to=None, data=artifact["bytecode"], gas=3_000_000)])
    probe = built.transactions[0].contract_address
    assert probe is not None
    chain.build([decoded(ACCOUNTS[0], nonce=1, to=probe, data=calldata("set(uint256)", 7), gas=100_000)])
    return chain, probe


def run(chain: MemoryChain, *blocks: BlockStateCall, **flags: bool) -> tuple[SimulatedBlock, ...]:
    request = SimulationRequest(blocks=blocks, **flags)
    return simulate(chain.head, request, chain.params, chain.cache, list(reversed(chain.hashes))[1:])


def block(*calls: SimulatedCall, state: StateOverrides | None = None, **overrides: Any) -> BlockStateCall:
    return BlockStateCall(
        block=BlockOverrides(**overrides), state=state or StateOverrides(), calls=tuple(calls)
    )


def call(to: Address | None, data: bytes = b"", sender: Address = ALICE, **fields: Any) -> SimulatedCall:
    return SimulatedCall(sender=sender, to=to, data=data, **fields)


def with_code(code: bytes) -> StateOverrides:
    return StateOverrides(((CONTRACT, AccountOverride(code=code)),))


def word(output: bytes, index: int = 0) -> int:
    return int.from_bytes(output[32 * index : 32 * index + 32], "big")


def test_calls_see_the_state_earlier_calls_left(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    first, second = run(
        chain,
        block(call(probe, calldata("set(uint256)", 41)), call(probe, calldata("get()"))),
        block(call(probe, calldata("get()"))),
    )
    assert [r.status for r in first.calls] == [1, 1]
    assert word(first.calls[1].return_data) == 41
    assert word(second.calls[0].return_data) == 41
    # The probe's ValueSet log, numbered within its block.
    assert [log.address for log in first.calls[0].logs] == [probe]


def test_nothing_is_stored_and_the_answer_is_deterministic(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    before = dict(chain.source)
    ask = block(call(probe, calldata("set(uint256)", 1)))
    once = run(chain, ask, ask)
    assert dict(chain.source) == before
    assert once == run(chain, ask, ask)


def test_blocks_chain_on_the_base_block(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    headers = [decode_header(b.header) for b in run(chain, block(), block(), block())]
    assert [h.block_number for h in headers] == [chain.head.block_number + n for n in (1, 2, 3)]
    assert [h.timestamp for h in headers] == [chain.head.timestamp + n for n in (1, 2, 3)]
    assert [h.parent_hash for h in headers] == [chain.head.hash, headers[0].hash, headers[1].hash]
    assert all(h.gas_limit == chain.head.gas_limit and h.base_fee_per_gas == 0 for h in headers)


def test_skipped_numbers_are_filled_with_empty_blocks(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    base = chain.head.block_number
    blocks = run(chain, block(number=base + 4, time=chain.head.timestamp + 100))
    headers = [decode_header(b.header) for b in blocks]
    assert [h.block_number for h in headers] == [base + 1, base + 2, base + 3, base + 4]
    assert headers[-1].timestamp == chain.head.timestamp + 100
    assert all(not b.calls for b in blocks)


def test_blockhash_reaches_the_simulated_blocks(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    blocks = run(chain, block(call(CONTRACT), state=with_code(PREVIOUS_HASH)), block(call(CONTRACT)))
    first, second = (decode_header(b.header) for b in blocks)
    assert blocks[0].calls[0].return_data == chain.head.hash
    assert blocks[1].calls[0].return_data == first.hash
    assert second.parent_hash == first.hash


def test_block_overrides_reach_the_evm(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    randao = bytes(range(32))
    (built,) = run(
        chain,
        block(
            call(CONTRACT, gas_price=5 * GWEI),
            state=with_code(ENVIRONMENT),
            fee_recipient=BOB,
            prev_randao=randao,
            time=chain.head.timestamp + 50,
            base_fee_per_gas=3 * GWEI,
        ),
    )
    output = built.calls[0].return_data
    assert word(output, 0) == int.from_bytes(BOB, "big")
    assert word(output, 1) == int.from_bytes(randao, "big")
    assert word(output, 2) == chain.head.timestamp + 50
    assert word(output, 3) == 3 * GWEI
    assert decode_header(built.header).coinbase == BOB


def test_a_call_naming_no_fee_pays_nothing_without_validation(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    (built,) = run(chain, block(call(BOB, sender=NOBODY), base_fee_per_gas=10 * GWEI))
    assert built.calls[0].status == 1


def test_reverts_and_halts_are_results_not_errors(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    (built,) = run(
        chain,
        block(call(probe, calldata("revertWithReason()")), call(CONTRACT), state=with_code(INVALID)),
    )
    reverted, halted = built.calls
    assert (reverted.status, reverted.reverted) == (0, True)
    assert reverted.error == "execution reverted: probe: told to revert"
    assert reverted.return_data[:4] == keccak(b"Error(string)")[:4]
    assert (halted.status, halted.reverted) == (0, False)
    assert halted.error is not None and halted.error.startswith("vm execution error")
    assert halted.gas_used == halted.max_used_gas > 21_000  # a halt burns all the gas it had
    assert decode_header(built.header).gas_used == reverted.gas_used + halted.gas_used


def test_state_overrides_apply_from_their_block_on(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    nine = StateOverrides(((probe, AccountOverride(state_diff=((0, 9),))),))
    blocks = run(
        chain,
        block(call(probe, calldata("get()"))),
        block(call(probe, calldata("get()")), state=nine),
        block(call(probe, calldata("get()"))),
    )
    assert [word(b.calls[0].return_data) for b in blocks] == [7, 9, 9]


def test_traced_transfers_are_logs_in_execution_order(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    deposit = call(probe, calldata("deposit()"), value=5)
    (traced,) = run(chain, block(deposit), trace_transfers=True)
    transfer, deposited = traced.calls[0].logs
    assert transfer.address == TRANSFER_LOG_ADDRESS
    assert transfer.topics == (
        keccak(b"Transfer(address,address,uint256)"),
        ALICE.rjust(32, b"\0"),
        probe.rjust(32, b"\0"),
    )
    assert int.from_bytes(transfer.data, "big") == 5
    assert deposited.address == probe
    assert [log.log_index for log in traced.calls[0].logs] == [0, 1]
    # The synthetic logs are not in the receipts: the block is the one built without them.
    (plain,) = run(chain, block(deposit))
    assert plain.header == traced.header
    assert len(plain.calls[0].logs) == 1


def test_inner_transfers_are_traced_and_reverted_ones_are_not(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    (built,) = run(
        chain,
        block(
            call(probe, calldata("spawnChild(uint256)", 1), value=3),
            call(probe, calldata("revertWithReason()"), value=3),
        ),
        trace_transfers=True,
    )
    spawned, reverted = built.calls
    transfers = [log for log in spawned.logs if log.address == TRANSFER_LOG_ADDRESS]
    assert [log.topics[1][12:] for log in transfers] == [ALICE, probe]  # Alice → Probe → child
    assert reverted.logs == ()


def test_a_moved_precompile_in_a_block(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    identity = Address((4).to_bytes(20, "big"))
    moved = StateOverrides(((identity, AccountOverride(move_precompile_to=CONTRACT)),))
    (built,) = run(chain, block(call(CONTRACT, b"echo"), call(identity, b"echo"), state=moved))
    assert [c.return_data for c in built.calls] == [b"echo", b""]


# -- validation ---------------------------------------------------------------------------


def test_validation_checks_nonces_fees_and_balances(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    nonce = 2  # Alice sent two transactions
    fee = {"max_fee_per_gas": 2 * GWEI, "max_priority_fee_per_gas": 0}
    (built,) = run(chain, block(call(BOB, nonce=nonce, **fee), call(BOB, **fee)), validation=True)
    assert [c.status for c in built.calls] == [1, 1]
    assert decode_header(built.header).base_fee_per_gas > 0
    refusals = [
        (call(BOB, nonce=nonce - 1, **fee), ex.NonceTooLow),
        (call(BOB, nonce=nonce + 1, **fee), ex.NonceTooHigh),
        (call(BOB), ex.FeeTooLow),
        (call(BOB, sender=NOBODY, **fee), ex.InsufficientFunds),
    ]
    for refused, error in refusals:
        with pytest.raises(error, match="block 0, call 0"):
            run(chain, block(refused), validation=True)


def test_without_validation_a_given_nonce_is_taken(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    (built,) = run(chain, block(call(BOB, nonce=50), call(BOB)))
    assert [c.status for c in built.calls] == [1, 1]


@pytest.mark.parametrize(
    ("blocks", "error", "words"),
    [
        ([block(call(BOB, gas=20_000))], ex.IntrinsicGasTooLow, "intrinsic gas"),
        ([block(call(BOB, sender=NOBODY, value=1))], ex.InsufficientFunds, "insufficient funds"),
        ([block(call(BOB, gas=50_000), gas_limit=40_000)], ex.GasLimitExceeded, "block gas limit"),
        ([block(call(None, b"\x00" * 49_153))], ex.InitCodeTooLarge, "EIP-3860"),
        ([block(), block(number=1)], ex.BlockNumberNotIncreasing, "must increase"),
        ([block(time=5_000), block(time=4_999)], ex.BlockTimeDecreasing, "must not decrease"),
        ([block()] * (MAX_BLOCKS + 1), ex.LimitExceeded, f"at most {MAX_BLOCKS}"),
        ([block(number=10_000)], ex.LimitExceeded, "skipped numbers included"),
        ([block(*[call(BOB)] * (MAX_CALLS + 1))], ex.LimitExceeded, f"at most {MAX_CALLS} in one"),
        ([block(call(BOB, gas=60_000_000), gas_limit=100_000_000)], ex.LimitExceeded, "gas in all"),
    ],
    ids=[
        "intrinsic-gas",
        "value-above-balance",
        "block-gas-limit",
        "init-code-size",
        "number-not-increasing",
        "time-decreasing",
        "too-many-blocks",
        "number-too-far",
        "too-many-calls",
        "too-much-gas",
    ],
)
def test_requests_the_rules_refuse(
    deployed: tuple[MemoryChain, Address], blocks: list[BlockStateCall], error: type[Exception], words: str
) -> None:
    chain, _ = deployed
    with pytest.raises(error, match=words):
        run(chain, *blocks)


def test_equal_timestamps_are_allowed(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    headers = [decode_header(b.header) for b in run(chain, block(time=5_000), block(time=5_000))]
    assert [h.timestamp for h in headers] == [5_000, 5_000]
