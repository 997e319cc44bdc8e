"""State overrides for calls and estimates (`evm_runtime.overrides`)."""

from __future__ import annotations

import pytest

from evm_runtime import exceptions as ex
from evm_runtime.calls import CallContext, state_at
from evm_runtime.chain import VM
from evm_runtime.overrides import AccountOverride, StateOverrides, apply_overrides
from evm_runtime.transactions import CallRequest
from evm_runtime.types import Address
from tests.support.artifacts import load_artifact

from .chainkit import ACCOUNTS, MemoryChain, calldata, decoded, funded_chain

ALICE = ACCOUNTS[0]
NOBODY = Address(bytes.fromhex("00000000000000000000000000000000000fee00"))
IDENTITY = Address((4).to_bytes(20, "big"))
"""The identity precompile: returns its input."""
ELSEWHERE = Address(bytes.fromhex("000000000000000000000000000000000000beef"))
RETURN_CALLER_BALANCE = bytes.fromhex("3331600052" + "60206000f3")
"""CALLER BALANCE PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN: the caller's balance."""


@pytest.fixture(scope="module")
def deployed() -> tuple[MemoryChain, Address]:
    """A chain with a Probe holding 7 in slot 0 and a child in slot 2."""
    chain = funded_chain()
    built = chain.build(
        [decoded(ALICE, nonce=0, to=None, data=load_artifact("Probe")["bytecode"], gas=3_000_000)]
    )
    probe = built.transactions[0].contract_address
    assert probe is not None
    built = chain.build(
        [
            decoded(ALICE, nonce=1, to=probe, data=calldata("set(uint256)", 7), gas=100_000),
            decoded(ALICE, nonce=2, to=probe, data=calldata("spawnChild(uint256)", 1), gas=500_000),
        ]
    )
    assert [tx.status for tx in built.transactions] == [1, 1]
    return chain, probe


def _context(chain: MemoryChain, overrides: StateOverrides) -> CallContext:
    return CallContext(chain.head, chain.params, chain.cache, list(reversed(chain.hashes)), overrides)


def _overrides(*accounts: tuple[Address, AccountOverride]) -> StateOverrides:
    return StateOverrides(tuple(accounts))


def _call(to: Address | None, data: bytes = b"", sender: Address = NOBODY, **fields: int) -> CallRequest:
    return CallRequest(sender=sender, to=to, gas=1_000_000, data=data, **fields)


def _word(output: bytes) -> int:
    return int.from_bytes(output, "big")


def test_no_overrides_read_the_stored_state(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    assert _word(_context(chain, StateOverrides()).call(_call(probe, calldata("get()"))).output) == 7


def test_state_diff_sets_only_the_given_slots(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    context = _context(chain, _overrides((probe, AccountOverride(state_diff=((0, 9),)))))
    assert _word(context.call(_call(probe, calldata("get()"))).output) == 9
    assert _word(context.call(_call(probe, calldata("lastChild()"))).output) != 0


def test_state_replaces_all_storage(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    context = _context(chain, _overrides((probe, AccountOverride(state=((1, 5),)))))
    assert _word(context.call(_call(probe, calldata("get()"))).output) == 0
    assert _word(context.call(_call(probe, calldata("lastChild()"))).output) == 0
    assert _word(context.call(_call(probe, calldata("burnResult()"))).output) == 5


def test_balance_and_code_are_replaced(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    overrides = _overrides(
        (NOBODY, AccountOverride(balance=12_345)),
        (ELSEWHERE, AccountOverride(code=RETURN_CALLER_BALANCE)),
    )
    assert _word(_context(chain, overrides).call(_call(ELSEWHERE)).output) == 12_345


def test_a_sender_without_ether_can_pay_with_an_overridden_balance(
    deployed: tuple[MemoryChain, Address],
) -> None:
    chain, probe = deployed
    transfer = _call(probe, calldata("deposit()"), value=10**18)
    with pytest.raises(ex.InsufficientFunds):
        _context(chain, StateOverrides()).estimate_gas(transfer)
    rich = _context(chain, _overrides((NOBODY, AccountOverride(balance=2 * 10**18))))
    assert rich.estimate_gas(transfer) > 21_000


def test_the_nonce_override_decides_the_created_address(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    spawn = _call(probe, calldata("spawnChild(uint256)", 1))
    plain = _context(chain, StateOverrides()).call(spawn).output[:32]
    moved = _context(chain, _overrides((probe, AccountOverride(nonce=100)))).call(spawn).output[:32]
    assert plain != moved


def test_a_moved_precompile_answers_at_its_new_address(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    context = _context(chain, _overrides((IDENTITY, AccountOverride(move_precompile_to=ELSEWHERE))))
    assert context.call(_call(ELSEWHERE, b"hello")).output == b"hello"
    assert context.call(_call(IDENTITY, b"hello")).output == b""
    # The chain's own precompiles are untouched.
    assert _context(chain, StateOverrides()).call(_call(IDENTITY, b"hello")).output == b"hello"
    assert IDENTITY in VM.get_state_class().computation_class.get_precompiles()


def test_code_on_a_precompile_address_replaces_the_precompile(deployed: tuple[MemoryChain, Address]) -> None:
    chain, _ = deployed
    overrides = _overrides(
        (NOBODY, AccountOverride(balance=77)), (IDENTITY, AccountOverride(code=RETURN_CALLER_BALANCE))
    )
    assert _word(_context(chain, overrides).call(_call(IDENTITY, b"hello")).output) == 77


def test_overrides_are_never_stored(deployed: tuple[MemoryChain, Address]) -> None:
    chain, probe = deployed
    before = dict(chain.source)
    state = state_at(chain.head, chain.params, chain.cache)
    apply_overrides(state, _overrides((probe, AccountOverride(state=(), balance=1, code=b"\x00"))))
    state.persist()
    assert dict(chain.source) == before
    assert _word(_context(chain, StateOverrides()).call(_call(probe, calldata("get()"))).output) == 7


@pytest.mark.parametrize(
    ("overrides", "error", "words"),
    [
        (_overrides((NOBODY, AccountOverride(state=(), state_diff=()))), ex.InvalidRequest, "not both"),
        (_overrides((NOBODY, AccountOverride(balance=2**256))), ex.InvalidRequest, "balance"),
        (_overrides((NOBODY, AccountOverride(nonce=2**64))), ex.InvalidRequest, "nonce"),
        (_overrides((NOBODY, AccountOverride(state_diff=((2**256, 1),)))), ex.InvalidRequest, "32-byte"),
        (_overrides((NOBODY, AccountOverride()), (NOBODY, AccountOverride())), ex.InvalidRequest, "twice"),
        (
            _overrides((NOBODY, AccountOverride(move_precompile_to=ELSEWHERE))),
            ex.InvalidRequest,
            "not a precompile",
        ),
        (
            _overrides((IDENTITY, AccountOverride(move_precompile_to=IDENTITY))),
            ex.PrecompileMovedToItself,
            "its own address",
        ),
        (
            _overrides(
                (IDENTITY, AccountOverride(move_precompile_to=ELSEWHERE)),
                (Address((2).to_bytes(20, "big")), AccountOverride(move_precompile_to=ELSEWHERE)),
            ),
            ex.PrecompileMovedTwice,
            "two precompiles",
        ),
        (
            _overrides(
                (IDENTITY, AccountOverride(move_precompile_to=ELSEWHERE)),
                (ELSEWHERE, AccountOverride(balance=1)),
            ),
            ex.InvalidRequest,
            "overridden too",
        ),
    ],
    ids=[
        "state-and-diff",
        "balance-too-big",
        "nonce-too-big",
        "slot-too-big",
        "address-twice",
        "move-non-precompile",
        "move-to-itself",
        "move-twice-to-one-address",
        "move-onto-an-override",
    ],
)
def test_impossible_overrides_are_refused(
    deployed: tuple[MemoryChain, Address], overrides: StateOverrides, error: type[Exception], words: str
) -> None:
    chain, _ = deployed
    with pytest.raises(error, match=words):
        _context(chain, overrides).call(_call(ELSEWHERE))
