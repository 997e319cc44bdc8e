"""Read-only execution: eth_call and gas estimates (`evm_runtime.calls`)."""

from __future__ import annotations

import dataclasses

import pytest
import rlp
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils import function_signature_to_4byte_selector

from evm_runtime import exceptions as ex
from evm_runtime.calls import CallContext, revert_message
from evm_runtime.transactions import CallRequest
from tests.support.artifacts import load_artifact

from .chainkit import ACCOUNTS, GWEI, MemoryChain, address_of, calldata, decoded, funded_chain, recipient

ALICE, BOB = ACCOUNTS[:2]
NOBODY = bytes.fromhex("00000000000000000000000000000000000fee00")  # holds no ether
ERROR = function_signature_to_4byte_selector("Error(string)")
PANIC = function_signature_to_4byte_selector("Panic(uint256)")


@pytest.fixture(scope="module")
def deployed() -> tuple[MemoryChain, bytes]:
    """A chain with a Probe holding 7, with one child, and 3 wei."""
    chain = funded_chain()
    probe_artifact = load_artifact("Probe")
    built = chain.build([decoded(ALICE, nonce=0, to=None, data=probe_artifact["bytecode"], gas=3_000_000)])
    probe = built.transactions[0].contract_address
    built = chain.build(
        [
            decoded(ALICE, nonce=1, to=probe, data=calldata("set(uint256)", 7), gas=100_000),
            decoded(ALICE, nonce=2, to=probe, data=calldata("spawnChild(uint256)", 1), gas=500_000),
            decoded(ALICE, nonce=3, to=probe, value=3, gas=100_000),
        ]
    )
    assert [tx.status for tx in built.transactions] == [1, 1, 1]
    return chain, probe


@pytest.fixture
def context(deployed: tuple[MemoryChain, bytes]) -> CallContext:
    chain, _ = deployed
    return CallContext(chain.head, chain.params, chain.cache, list(reversed(chain.hashes)))


@pytest.fixture
def probe(deployed: tuple[MemoryChain, bytes]) -> bytes:
    return deployed[1]


def _call(
    to: bytes | None, data: bytes = b"", *, sender: bytes = address_of(ALICE), gas: int = 5_000_000, **kw
):
    return CallRequest(sender=sender, to=to, gas=gas, data=data, **kw)


# -- call ------------------------------------------------------------------------------------


def test_call_returns_the_output(context: CallContext, probe: bytes) -> None:
    outcome = context.call(_call(probe, calldata("get()")))
    assert outcome.output == (7).to_bytes(32, "big")
    assert 21_000 < outcome.gas_used < 30_000
    assert context.call(_call(probe, calldata("balance()"))).output == (3).to_bytes(32, "big")


def test_a_call_changes_nothing(context: CallContext, probe: bytes) -> None:
    assert context.call(_call(probe, calldata("set(uint256)", 99))).output == b""
    assert context.call(_call(probe, calldata("get()"))).output == (7).to_bytes(32, "big")


def test_an_account_without_ether_can_call_views(context: CallContext, probe: bytes) -> None:
    assert context.call(_call(probe, calldata("get()"), sender=NOBODY)).output == (7).to_bytes(32, "big")


def test_a_call_that_pays_fees_needs_the_funds(context: CallContext, probe: bytes) -> None:
    with pytest.raises(ex.InsufficientFunds, match="insufficient funds"):
        context.call(_call(probe, calldata("get()"), sender=NOBODY, gas=100_000, max_fee_per_gas=10 * GWEI))
    with pytest.raises(ex.InsufficientFunds):
        context.call(_call(probe, calldata("get()"), sender=NOBODY, gas=100_000, gas_price=10 * GWEI))


def test_a_call_sending_more_than_the_balance_fails(context: CallContext) -> None:
    with pytest.raises(ex.InsufficientFunds):
        context.call(_call(bytes.fromhex(recipient(1)[2:]), sender=NOBODY, value=1))


def test_a_call_can_create_a_contract(context: CallContext) -> None:
    # Init code returning the one-byte runtime code 0x00: PUSH1 1 PUSH1 0 RETURN (memory is zero).
    outcome = context.call(_call(None, bytes.fromhex("60016000f3")))
    assert outcome.output == b"\x00"


@pytest.mark.parametrize(
    "signature,args,reason",
    [
        ("revertWithReason()", (), "probe: told to revert"),
        ("requireFalse()", (), "probe: requirement failed"),
        ("revertingView()", (), "probe: view reverted"),
    ],
)
def test_revert_with_a_reason(
    context: CallContext, probe: bytes, signature: str, args: tuple, reason: str
) -> None:
    with pytest.raises(ex.ExecutionReverted) as caught:
        context.call(_call(probe, calldata(signature, *args)))
    assert str(caught.value) == f"execution reverted: {reason}"
    assert caught.value.data == ERROR + abi_encode(["string"], [reason])


def test_custom_error_data_is_preserved(context: CallContext, probe: bytes) -> None:
    with pytest.raises(ex.ExecutionReverted) as caught:
        context.call(_call(probe, calldata("failCustom()"), sender=address_of(BOB)))
    selector = function_signature_to_4byte_selector("Unauthorized(address,uint256)")
    assert caught.value.data == selector + abi_encode(["address", "uint256"], [address_of(BOB), 42])
    assert str(caught.value) == "execution reverted"


@pytest.mark.parametrize(
    "signature,args,code", [("panicAssert()", (), 0x01), ("divide(uint256,uint256)", (1, 0), 0x12)]
)
def test_panics(context: CallContext, probe: bytes, signature: str, args: tuple, code: int) -> None:
    with pytest.raises(ex.ExecutionReverted) as caught:
        context.call(_call(probe, calldata(signature, *args)))
    assert caught.value.data == PANIC + code.to_bytes(32, "big")
    assert str(caught.value) == f"execution reverted: panic code {code:#04x}"


def test_running_out_of_gas_is_an_execution_failure(context: CallContext, probe: bytes) -> None:
    with pytest.raises(ex.ExecutionFailed, match="(?i)out of gas"):
        context.call(_call(probe, calldata("burnGas(uint256)", 10_000), gas=60_000))


def test_a_call_with_a_nonce_runs_as_if_the_sender_had_it(context: CallContext) -> None:
    # Init code returning ADDRESS (the new contract's address) as 32 bytes.
    code = bytes.fromhex("3060005260206000f3")
    outcome = context.call(_call(None, code, sender=address_of(BOB), nonce=5))
    assert outcome.output[12:] == keccak(rlp.encode([address_of(BOB), 5]))[12:]


def test_a_call_with_an_out_of_range_nonce_is_an_invalid_request(context: CallContext, probe: bytes) -> None:
    with pytest.raises(ex.InvalidRequest):
        context.call(_call(probe, calldata("get()"), nonce=2**64))


# -- estimate_gas --------------------------------------------------------------------------


def _assert_minimal(context: CallContext, request: CallRequest) -> int:
    estimate = context.estimate_gas(request)
    context.call(dataclasses.replace(request, gas=estimate))
    with pytest.raises(ex.ConclaveError):
        context.call(dataclasses.replace(request, gas=estimate - 1))
    return estimate


def test_the_estimate_of_a_transfer_is_21000(context: CallContext) -> None:
    assert _assert_minimal(context, _call(bytes.fromhex(recipient(5)[2:]), value=1)) == 21_000


def test_the_estimate_counts_calldata(context: CallContext) -> None:
    assert _assert_minimal(context, _call(bytes.fromhex(recipient(5)[2:]), b"\x00\x01")) == 21_000 + 4 + 16


@pytest.mark.parametrize(
    "signature,args,value",
    [
        ("get()", (), 0),
        ("set(uint256)", (8,), 0),
        ("set(uint256)", (7,), 0),  # no change of the slot
        ("set(uint256)", (0,), 0),  # clearing the slot: a refund
        ("burnGas(uint256)", (40,), 0),
        ("emitMany(uint256)", (4,), 0),
        ("deposit()", (), 5),
        ("spawnChild(uint256)", (2,), 1),
        ("spawnChild2(bytes32,uint256)", (b"\x01" * 32, 2), 0),
        ("pingChild(uint256)", (3,), 0),
        ("tryChildFail()", (), 0),
    ],
)
def test_the_estimate_is_the_least_gas_that_succeeds(
    context: CallContext, probe: bytes, signature: str, args: tuple, value: int
) -> None:
    estimate = _assert_minimal(context, _call(probe, calldata(signature, *args), value=value))
    assert estimate > 21_000


def test_the_estimate_of_a_plain_transfer_to_a_contract(context: CallContext, probe: bytes) -> None:
    _assert_minimal(context, _call(probe, value=2))


def test_the_estimate_of_a_creation(context: CallContext) -> None:
    probe_artifact = load_artifact("Probe")
    _assert_minimal(context, _call(None, bytes.fromhex(probe_artifact["bytecode"][2:])))


def test_the_estimate_of_a_reverting_call_reports_the_revert(context: CallContext, probe: bytes) -> None:
    with pytest.raises(ex.ExecutionReverted, match="execution reverted: probe: told to revert") as caught:
        context.estimate_gas(_call(probe, calldata("revertWithReason()")))
    assert caught.value.data[:4] == ERROR


def test_the_estimate_above_the_cap_fails(context: CallContext, probe: bytes) -> None:
    with pytest.raises(ex.ExecutionFailed, match=r"gas required exceeds allowance \(30000\)"):
        context.estimate_gas(_call(probe, calldata("burnGas(uint256)", 100), gas=30_000))
    with pytest.raises(ex.ExecutionFailed, match=r"gas required exceeds allowance \(20000\)"):
        context.estimate_gas(_call(bytes.fromhex(recipient(5)[2:]), gas=20_000))


# -- revert_message ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,message",
    [
        (ERROR + abi_encode(["string"], ["nope"]), "execution reverted: nope"),
        (ERROR + abi_encode(["string"], [""]), "execution reverted: "),
        (ERROR + abi_encode(["string"], ["ünïcödé"]), "execution reverted: ünïcödé"),
        (ERROR, "execution reverted"),
        (ERROR + b"\x00" * 31, "execution reverted"),
        (ERROR + (32).to_bytes(32, "big") + (1000).to_bytes(32, "big") + b"short", "execution reverted"),
        (PANIC + (0x11).to_bytes(32, "big"), "execution reverted: panic code 0x11"),
        (PANIC + (0x01).to_bytes(32, "big"), "execution reverted: panic code 0x01"),
        (PANIC + (0x11).to_bytes(32, "big") + b"\x00", "execution reverted"),
        (PANIC, "execution reverted"),
        (b"", "execution reverted"),
        (b"\xde\xad\xbe\xef" + b"\x00" * 64, "execution reverted"),
        (b"\x08\xc3", "execution reverted"),
    ],
)
def test_revert_message(data: bytes, message: str) -> None:
    assert revert_message(data) == message
