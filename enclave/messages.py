"""The host–enclave message interface: every message, its encoding and its framing.

A frame is `length (4 bytes, big-endian) ‖ body`, the body one CBOR item (RFC 8949), at
most `MAX_FRAME_BYTES`. The messages:

    host → enclave   [HELLO, PROTOCOL_VERSION]
                     [CALL, method, args]            method: an `EnclaveAPI` member
    enclave → host   [RESULT, value]                 HELLO's value: an `EnclaveFacts`
                     [FAILURE, error name, message, attributes]

There are two channels, each a pair of pipes: the *block* channel carries the calls that
execute and commit blocks (`BLOCK_CALLS`), the *read* channel everything else, so that
admitting transactions and answering reads go on while a block executes (the enclave
serves each channel on its own thread). On each channel, one call is answered before the
next is sent. Values are plain data: None, booleans,
integers of any size, bytes, text, arrays, maps, and the dataclasses of Conclave's own
packages (tag `DATACLASS_TAG`: [module, name, field values]). A `DecodedTransaction`
crosses as its raw bytes, sender and `private_for` (tag `TRANSACTION_TAG`) and is rebuilt on arrival
without recovering the sender again; each side remembers the transactions it sent or got
last, so one that crosses back (admitted, then executed) is not decoded again. Errors
cross as the name of a `ConclaveError` subclass and are raised again as that class on the
other side; any other error of the enclave arrives as `EnclaveFailure`. A `ConclaveError`
that is part of a result (`admit_many`: one per refused transaction) crosses the same way
as a value (tag `ERROR_TAG`: [name, message, attributes]) and arrives as that class.
"""

from __future__ import annotations

import dataclasses
import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import IO, Any

import cbor2

from evm_runtime.chain import ChainParams
from evm_runtime.exceptions import ConclaveError
from evm_runtime.transactions import DecodedTransaction, decode_recovered
from evm_runtime.types import Address

from .interface import EnclaveAPI

PROTOCOL_VERSION = 4
MAX_FRAME_BYTES = 256 * 1024 * 1024
HELLO, CALL, RESULT, FAILURE = "hello", "call", "result", "failure"
DATACLASS_TAG = 40_000
TRANSACTION_TAG = 40_001
ERROR_TAG = 40_002
RECENT_TRANSACTIONS = 16_384
TRUSTED_PACKAGES = ("evm_runtime", "ledger", "enclave", "governance")
"""The packages whose dataclasses may cross (the enclave's plain-data types)."""

METHODS = frozenset(
    name for name in vars(EnclaveAPI) if not name.startswith("_") and name not in ("params", "measurement")
)
"""The calls the host may make: the members of `EnclaveAPI` (its two properties come with HELLO)."""

BLOCK_CALLS = frozenset(
    {
        "execute",
        "validate_proposal",
        "execute_patch",
        "reopen",
        "committed",
        "reload_head",
        "block_payload",
        "create_genesis",
    }
)
"""The calls of the block channel; the others go on the read channel."""


class ProtocolError(Exception):
    """A malformed frame or message, or one of another protocol version."""


class EnclaveFailure(Exception):
    """The enclave failed in a way that is not a domain error (a bug or a lost process)."""


@dataclass(frozen=True, slots=True)
class EnclaveFacts:
    """What the enclave tells the host when it starts."""

    protocol_version: int
    params: ChainParams
    measurement: bytes
    pid: int


# -- values -------------------------------------------------------------------------------


class _RecentTransactions:
    """The last transactions that crossed, by raw bytes (bounded, least recent dropped)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._by_raw: OrderedDict[bytes, DecodedTransaction] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, decoded: DecodedTransaction) -> None:
        with self._lock:
            self._by_raw[decoded.raw] = decoded
            self._by_raw.move_to_end(decoded.raw)
            if len(self._by_raw) > self._capacity:
                self._by_raw.popitem(last=False)

    def rebuild(
        self, raw: bytes, sender: Address, private_for: tuple[Address, ...] | None
    ) -> DecodedTransaction:
        with self._lock:
            known = self._by_raw.get(raw)
        if known is None or known.sender != sender:
            known = decode_recovered(raw, sender)
            self.remember(known)
        return known if known.private_for == private_for else replace(known, private_for=private_for)


_recent = _RecentTransactions(RECENT_TRANSACTIONS)


def _encode_default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, DecodedTransaction):
        _recent.remember(value)
        encoder.encode(cbor2.CBORTag(TRANSACTION_TAG, [value.raw, value.sender, value.private_for]))
    elif isinstance(value, ConclaveError):
        encoder.encode(cbor2.CBORTag(ERROR_TAG, failure(value)[1:]))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = [getattr(value, field.name) for field in dataclasses.fields(value)]
        encoder.encode(cbor2.CBORTag(DATACLASS_TAG, [cls.__module__, cls.__qualname__, fields]))
    else:
        raise TypeError(f"{type(value).__name__} cannot cross the enclave boundary")


def _thawed(value: Any) -> Any:
    """Tag contents decode immutable (tuples, frozen maps); maps become dicts again."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return {key: _thawed(item) for key, item in value.items()}
    return value


def _dataclass_of(module: str, name: str) -> type:
    if module.split(".")[0] not in TRUSTED_PACKAGES or module not in sys.modules:
        raise ProtocolError(f"{module}.{name} may not cross the enclave boundary")
    cls = getattr(sys.modules[module], name, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ProtocolError(f"{module}.{name} is not a dataclass of Conclave's")
    return cls


def _decode_tag(tag: cbor2.CBORTag, *_: Any) -> Any:
    if tag.tag == TRANSACTION_TAG:
        raw, sender, private_for = tag.value
        parties = None if private_for is None else tuple(Address(party) for party in private_for)
        return _recent.rebuild(raw, Address(sender), parties)
    if tag.tag == DATACLASS_TAG:
        module, name, fields = tag.value
        return _dataclass_of(module, name)(*(_thawed(field) for field in fields))
    if tag.tag == ERROR_TAG:
        name, message, attributes = tag.value
        if name not in _domain_errors():
            raise ProtocolError(f"{name!r} is not a Conclave error")
        return _domain_error(name, message, _thawed(attributes))
    raise ProtocolError(f"unknown CBOR tag {tag.tag}")


def encode(value: Any) -> bytes:
    return cbor2.dumps(value, default=_encode_default)


def decode(body: bytes) -> Any:
    try:
        return cbor2.loads(body, tag_hook=_decode_tag)
    except (cbor2.CBORDecodeError, TypeError, ValueError) as exc:
        raise ProtocolError(f"undecodable message: {exc}") from None


# -- errors -------------------------------------------------------------------------------


def _domain_errors() -> dict[str, type[ConclaveError]]:
    found: dict[str, type[ConclaveError]] = {}
    pending: list[type[ConclaveError]] = [ConclaveError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def failure(error: BaseException) -> list[Any]:
    """The FAILURE message of an error raised in the enclave."""
    if isinstance(error, ConclaveError):
        attributes = {key: value for key, value in vars(error).items() if not key.startswith("_")}
        return [FAILURE, type(error).__name__, str(error), attributes]
    return [FAILURE, "", f"{type(error).__name__}: {error}", {}]


def raise_failure(name: str, message: str, attributes: Mapping[str, Any]) -> None:
    """Raise again, on the host, the error a FAILURE message describes."""
    if not name or name not in _domain_errors():
        raise EnclaveFailure(f"the enclave failed: {message}")
    raise _domain_error(name, message, attributes)


def _domain_error(name: str, message: str, attributes: Mapping[str, Any]) -> ConclaveError:
    """The `ConclaveError` subclass called `name`, made again with `message` and `attributes`."""
    cls = _domain_errors()[name]
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


# -- frames -------------------------------------------------------------------------------

_LENGTH = struct.Struct(">I")


def write_frame(stream: IO[bytes], message: Any) -> None:
    body = encode(message)
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"a message of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    frame = memoryview(_LENGTH.pack(len(body)) + body)
    while frame:  # an unbuffered pipe may take part of a large frame (a signal cut it short)
        written = stream.write(frame)
        frame = frame[written or 0 :]
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next message; EOFError when the other side has gone."""
    header = _read_exactly(stream, _LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"a frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    return decode(_read_exactly(stream, length))


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError("the other side of the enclave channel has gone")
        data += chunk
    return bytes(data)
