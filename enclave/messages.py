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
next is sent. Values are plain data: None, booleans, integers of any size, bytes, text,
arrays, maps, and the dataclasses of Conclave's own packages (tag `DATACLASS_TAG`:
[module, name, field values]). Errors cross as the name of a `ConclaveError` subclass and
are raised again as that class on the other side; any other error of the enclave arrives
as `EnclaveFailure`. A `ConclaveError` that is part of a result (`admit_many`: one per
refused transaction) crosses the same way as a value (tag `ERROR_TAG`: [name, message,
attributes]) and arrives as that class.

A `DecodedTransaction` crosses as its raw bytes, sender, `private_for` and seal (tag
`TRANSACTION_TAG`). The enclave side seals each one it sends (an HMAC over the other three
under a key of its own: `guard_transactions`); the host keeps the seal with it and gives
it back. The host takes the enclave's word; the enclave takes a transaction as the host
describes it only with its own seal, and otherwise recovers the sender again (it must be
the one claimed) and refuses a confidential one, whose audience only it settles. (A host
may still hand a confidential transaction back as public: it holds the signed bytes, which
anyone may send as public.) Each side remembers the transactions it sent or got last, so
one that crosses back (admitted, then executed) is not decoded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
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
from evm_runtime.transactions import DecodedTransaction, decode_recovered, decode_signed_transaction
from evm_runtime.types import Address

from .interface import EnclaveAPI

PROTOCOL_VERSION = 5
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
        self, raw: bytes, sender: Address, private_for: tuple[Address, ...] | None, seal: bytes
    ) -> DecodedTransaction:
        """The transaction the enclave settled as `raw` from `sender` for `private_for`."""
        with self._lock:
            known = self._by_raw.get(raw)
        if known is None or known.sender != sender:
            known = decode_recovered(raw, sender)
            self.remember(known)
        if known.private_for == private_for and known.seal == seal:
            return known
        return replace(known, private_for=private_for, seal=seal)


_recent = _RecentTransactions(RECENT_TRANSACTIONS)


class _TransactionGuard:
    """The enclave side's seals: made on what it sends, checked on what it gets back."""

    def __init__(self, key: bytes, chain_id: int) -> None:
        self._key = key
        self._chain_id = chain_id

    def seal(self, raw: bytes, sender: Address, private_for: tuple[Address, ...] | None) -> bytes:
        audience = b"\x00" if private_for is None else b"\x01" + len(private_for).to_bytes(2, "big")
        fields = sender + audience + b"".join(private_for or ()) + raw
        return hmac.new(self._key, fields, hashlib.sha256).digest()

    def receive(
        self, raw: bytes, sender: Address, private_for: tuple[Address, ...] | None, seal: bytes
    ) -> DecodedTransaction:
        """The transaction as the host describes it if sealed here; else decoded again."""
        if any(len(address) != 20 for address in (sender, *(private_for or ()))):
            raise ProtocolError("a transaction came back with a malformed sender or party")
        if hmac.compare_digest(seal, self.seal(raw, sender, private_for)):
            return _recent.rebuild(raw, sender, private_for, b"")
        if private_for is not None:
            raise ProtocolError("a confidential transaction came back without the enclave's seal")
        try:
            decoded = decode_signed_transaction(raw, self._chain_id)
        except ConclaveError as refused:
            raise ProtocolError(f"a transaction that was never admitted: {refused}") from None
        if decoded.sender != sender:
            raise ProtocolError(f"transaction 0x{decoded.hash.hex()} is not from 0x{sender.hex()}")
        return decoded


_guard: _TransactionGuard | None = None


def guard_transactions(key: bytes, chain_id: int) -> None:
    """Make this process the enclave side of the channel (`enclave.main`): the transactions
    it sends are sealed with `key`, those it gets back checked (see the module's rules)."""
    global _guard
    _guard = _TransactionGuard(key, chain_id)


def _encode_default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, DecodedTransaction):
        _recent.remember(value)
        raw, sender, private_for = value.raw, value.sender, value.private_for
        seal = value.seal if _guard is None else _guard.seal(raw, sender, private_for)
        encoder.encode(cbor2.CBORTag(TRANSACTION_TAG, [raw, sender, private_for, seal]))
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
        raw, sender, private_for, seal = tag.value
        parties = None if private_for is None else tuple(Address(party) for party in private_for)
        if _guard is None:  # the host: the enclave's word
            return _recent.rebuild(raw, Address(sender), parties, seal)
        return _guard.receive(raw, Address(sender), parties, seal)
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
        if isinstance(exc.__cause__, ProtocolError):  # a tag refused (cbor2 wraps it)
            raise exc.__cause__ from None
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
    return decode(read_body(stream))


def read_body(stream: IO[bytes]) -> bytes:
    """The next frame's body, not decoded yet; EOFError when the other side has gone."""
    header = _read_exactly(stream, _LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"a frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    return _read_exactly(stream, length)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError("the other side of the enclave channel has gone")
        data += chunk
    return bytes(data)
