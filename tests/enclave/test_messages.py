"""The host–enclave messages: values round-trip exactly, nothing else crosses."""

from __future__ import annotations

import io
import os
import threading
from dataclasses import replace

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave import messages
from enclave.messages import (
    DATACLASS_TAG,
    ERROR_TAG,
    MAX_FRAME_BYTES,
    METHODS,
    EnclaveFailure,
    ProtocolError,
    decode,
    encode,
    failure,
    guard_transactions,
    raise_failure,
    read_frame,
    write_frame,
)
from evm_runtime.exceptions import ExecutionReverted, NonceTooLow
from evm_runtime.transactions import CallRequest
from evm_runtime.types import Address, ExecutedTransaction, Hash32, LogRecord
from ledger.ordering import ExecutionResult
from ledger.store import BlockRecord
from tests.evm_runtime.chainkit import ACCOUNTS, CHAIN_ID, address_of, decoded, sign

_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(_plain)
def test_plain_values_round_trip(value: object) -> None:
    assert decode(encode(value)) == value


@given(st.integers(min_value=0, max_value=2**256), st.binary(max_size=200))
def test_call_requests_round_trip_with_big_integers(value: int, payload: bytes) -> None:
    call = CallRequest(sender=Address(b"\x01" * 20), to=None, gas=30_000_000, value=value, data=payload)
    assert decode(encode(call)) == call


def test_blocks_and_execution_results_round_trip() -> None:
    log = LogRecord(address=Address(b"\x02" * 20), topics=(b"\x03" * 32,), data=b"x", log_index=0)
    executed = ExecutedTransaction(
        hash=Hash32(b"\x04" * 32),
        raw=b"raw",
        sender=Address(b"\x05" * 20),
        to=None,
        nonce=0,
        index=0,
        tx_type=2,
        status=1,
        gas_used=21_000,
        cumulative_gas_used=21_000,
        effective_gas_price=2**70,
        contract_address=Address(b"\x06" * 20),
        logs=(log,),
        logs_bloom=bytes(256),
        receipt_rlp=b"receipt",
    )
    block = BlockRecord(
        number=1,
        hash=Hash32(b"\x07" * 32),
        parent_hash=Hash32(b"\x08" * 32),
        header=b"header",
        timestamp=1_000,
        transactions=(executed,),
        state_writes={b"\x09" * 32: b"node"},
    )
    transaction = decoded(ACCOUNTS[0], nonce=3, value=9)
    result = decode(encode(ExecutionResult(block=block, dropped=((transaction, "nonce too low"),))))
    assert result.block == block and isinstance(result.block.state_writes, dict)
    [(again, reason)] = result.dropped
    assert (again.raw, again.sender, again.hash, again.nonce, reason) == (
        transaction.raw,
        transaction.sender,
        transaction.hash,
        3,
        "nonce too low",
    )


@pytest.mark.parametrize(
    "module, name",
    [
        ("os", "system"),
        ("subprocess", "Popen"),
        ("evm_runtime.types", "Address"),
        ("gateway.node", "NodeConfig"),
    ],
)
def test_only_conclave_dataclasses_of_the_enclave_packages_cross(module: str, name: str) -> None:
    with pytest.raises(ProtocolError):
        decode(cbor2.dumps(cbor2.CBORTag(DATACLASS_TAG, [module, name, []])))


def test_objects_that_are_not_plain_data_do_not_cross() -> None:
    with pytest.raises(TypeError, match="cannot cross"):
        encode(object())


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(b"\xff\xff\xff")


def test_domain_errors_cross_with_their_type_and_data() -> None:
    with pytest.raises(ExecutionReverted) as reverted:
        raise_failure(*decode(encode(failure(ExecutionReverted("execution reverted: no", b"\x08\xc3"))))[1:])
    assert reverted.value.data == b"\x08\xc3" and str(reverted.value) == "execution reverted: no"
    with pytest.raises(NonceTooLow, match="nonce too low"):
        raise_failure(*failure(NonceTooLow("nonce too low"))[1:])


def test_domain_errors_in_a_result_cross_as_values_with_their_type_and_data() -> None:
    """`admit_many` answers a refused transaction with its error, among admitted ones."""
    reverted, too_low = decode(
        encode([ExecutionReverted("reverted", b"\x08\xc3"), NonceTooLow("nonce too low")])
    )
    assert (
        type(reverted) is ExecutionReverted and reverted.data == b"\x08\xc3" and str(reverted) == "reverted"
    )
    assert type(too_low) is NonceTooLow and str(too_low) == "nonce too low"
    with pytest.raises(ProtocolError):
        decode(cbor2.dumps(cbor2.CBORTag(ERROR_TAG, ["KeyError", "x", {}])))
    with pytest.raises(TypeError):
        encode(KeyError("x"))  # only domain errors cross as values


def test_other_errors_arrive_as_enclave_failures() -> None:
    with pytest.raises(EnclaveFailure, match="KeyError"):
        raise_failure(*failure(KeyError("x"))[1:])


def test_frames_round_trip_and_a_closed_channel_is_eof() -> None:
    stream = io.BytesIO()
    write_frame(stream, ["call", "balance", [b"\x01" * 20, 3]])
    write_frame(stream, ["result", 10**30])
    stream.seek(0)
    assert read_frame(stream) == ["call", "balance", [b"\x01" * 20, 3]]
    assert read_frame(stream) == ["result", 10**30]
    with pytest.raises(EOFError):
        read_frame(stream)


class _Trickle(io.BytesIO):
    """A pipe that takes at most 7 bytes a write, as one interrupted by signals does."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return super().write(bytes(data[:7]))


def test_a_frame_written_in_pieces_arrives_whole() -> None:
    stream = _Trickle()
    write_frame(stream, ["result", b"\x02" * 1000])
    stream.seek(0)
    assert read_frame(stream) == ["result", b"\x02" * 1000]


def test_frames_cross_a_pipe_read_through_a_buffer() -> None:
    """The channels read their pipes buffered (a frame's length and body in one read): a
    frame that arrives with the next one's first bytes leaves them for the next read."""
    inbox, outbox = os.pipe()

    def send() -> None:  # more than a pipe holds: written while read
        with os.fdopen(outbox, "wb", buffering=0) as writer:
            write_frame(writer, ["call", "admit", [b"\x03" * 300, None, None]])
            write_frame(writer, ["result", b"\x04" * 100_000])
            write_frame(writer, ["result", None])

    sender = threading.Thread(target=send)
    sender.start()
    with os.fdopen(inbox, "rb") as reader:
        assert read_frame(reader) == ["call", "admit", [b"\x03" * 300, None, None]]
        assert read_frame(reader) == ["result", b"\x04" * 100_000]
        assert read_frame(reader) == ["result", None]
        with pytest.raises(EOFError):
            read_frame(reader)
    sender.join()


def test_an_oversized_frame_is_refused_before_reading_it() -> None:
    stream = io.BytesIO((MAX_FRAME_BYTES + 1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(ProtocolError, match="exceeds"):
        read_frame(stream)


def test_the_calls_are_the_enclave_interface() -> None:
    assert {"admit", "admit_many", "execute", "committed", "call", "estimate_gas", "balance"} <= METHODS
    assert "params" not in METHODS and "measurement" not in METHODS


# -- transactions crossing back to the enclave --------------------------------------------

SEAL_KEY = b"k" * 32


class Sides:
    """Both ends of the channel in one process: the enclave side seals and checks."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        monkeypatch.setattr(messages, "_guard", None)

    def from_enclave(self, value: object) -> object:
        guard_transactions(SEAL_KEY, CHAIN_ID)
        body = encode(value)
        self._monkeypatch.setattr(messages, "_guard", None)
        return decode(body)

    def to_enclave(self, value: object, key: bytes = SEAL_KEY) -> object:
        body = encode(value)
        guard_transactions(key, CHAIN_ID)
        try:
            return decode(body)
        finally:
            self._monkeypatch.setattr(messages, "_guard", None)


@pytest.fixture
def sides(monkeypatch: pytest.MonkeyPatch) -> Sides:
    return Sides(monkeypatch)


PARTIES = (address_of(ACCOUNTS[1]), address_of(ACCOUNTS[2]))


def test_a_transaction_the_enclave_settled_comes_back_as_it_was(sides: Sides) -> None:
    settled = replace(decoded(ACCOUNTS[0], nonce=4), private_for=PARTIES)
    held = sides.from_enclave(settled)
    assert held.seal and (held.sender, held.private_for) == (settled.sender, PARTIES)
    back = sides.to_enclave([held])[0]
    assert (back.raw, back.sender, back.private_for, back.nonce) == (settled.raw, settled.sender, PARTIES, 4)


def test_the_host_cannot_change_who_sent_a_transaction(sides: Sides) -> None:
    held = sides.from_enclave(decoded(ACCOUNTS[0], nonce=1))
    forged = replace(held, sender=address_of(ACCOUNTS[3]))
    with pytest.raises(ProtocolError, match="is not from"):
        sides.to_enclave([forged])


def test_addresses_coming_back_have_twenty_bytes(sides: Sides) -> None:
    held = sides.from_enclave(replace(decoded(ACCOUNTS[0]), private_for=PARTIES))
    for malformed in (
        replace(held, sender=held.sender + b"\x00"),
        replace(held, private_for=(b"\x01" * 19,)),
    ):
        with pytest.raises(ProtocolError, match="malformed"):
            sides.to_enclave([malformed])


def test_the_host_cannot_widen_or_change_an_audience(sides: Sides) -> None:
    held = sides.from_enclave(replace(decoded(ACCOUNTS[0]), private_for=PARTIES))
    for audience in (PARTIES + (address_of(ACCOUNTS[4]),), PARTIES[:1]):
        with pytest.raises(ProtocolError, match="without the enclave's seal"):
            sides.to_enclave([replace(held, private_for=audience)])


def test_an_unsealed_transaction_is_decoded_again_and_must_be_genuine(sides: Sides) -> None:
    genuine = decoded(ACCOUNTS[0], nonce=2)
    again = sides.to_enclave([genuine])[0]  # never crossed: no seal
    assert (again.sender, again.nonce, again.private_for) == (genuine.sender, 2, None)
    other_chain = replace(genuine, raw=sign(ACCOUNTS[0], chainId=CHAIN_ID + 1))
    with pytest.raises(ProtocolError, match="never admitted"):
        sides.to_enclave([other_chain])
    tampered = genuine.raw[:-1] + bytes([genuine.raw[-1] ^ 1])  # the signature's last byte
    with pytest.raises(ProtocolError, match="is not from"):
        sides.to_enclave([replace(genuine, raw=tampered)])


def test_a_seal_is_bound_to_its_key(sides: Sides) -> None:
    held = sides.from_enclave(replace(decoded(ACCOUNTS[0]), private_for=PARTIES))
    with pytest.raises(ProtocolError, match="without the enclave's seal"):
        sides.to_enclave([held], key=b"another enclave's key".ljust(32, b"."))
