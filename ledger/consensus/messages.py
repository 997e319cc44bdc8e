"""The QBFT messages, their canonical encoding and signatures, and commit certificates.

Four messages, with QBFT's codes (GoQuorum `message.go`):

    PROPOSAL     0x12  the proposer of (height, round) offers a block
    PREPARE      0x13  a validator accepted that proposal
    COMMIT       0x14  a validator saw a quorum of prepares; carries its commit seal
    ROUND_CHANGE 0x15  a validator moves to a new round, naming what it prepared

Every message has a *body*, the part its author signs, an RLP list that starts with the
code, the author's address, the height and the round:

    PROPOSAL      [0x12, author, height, round, block_hash, block]
    PREPARE       [0x13, author, height, round, block_hash]
    COMMIT        [0x14, author, height, round, block_hash, seal]
    ROUND_CHANGE  [0x15, author, height, round, [] | [prepared_round, prepared_hash]]

The signature is 65 bytes `r ‖ s ‖ v` (v in 0..1), secp256k1, recoverable, over
`keccak(rlp(body))` (`signing_hash`). On the wire a message is `[body, signature, …]`
with what justifies it after (`encode` / `decode`), unsigned because it is itself made of
signed messages:

    PROPOSAL      [body, signature, [round_change…], [prepare…]]
    PREPARE       [body, signature]
    COMMIT        [body, signature]
    ROUND_CHANGE  [body, signature, [] | [prepared_block, [prepare…]]]

where a `round_change` or `prepare` inside is `[body, signature]`. A proposal for a round
above 0 carries the quorum of round changes that justifies it and, when one of them names
a prepared block, the quorum of prepares for the highest (its prepared certificate); the
round changes travel without their own attachments, as in QBFT. Integers are minimal
big-endian (RLP's), and `decode` accepts only the canonical encoding: re-encoding gives
back the same bytes.

A commit seal is the author's signature over `seal_hash(block_hash, round) =
keccak(block_hash ‖ round as 8 bytes big-endian)`, as QBFT's committed seal covers the
block hash with the round. A quorum of seals of one round is the block's commit
certificate (`CommitCertificate`), which anyone can check knowing only the validator set
(`verify_certificate`). The block itself is opaque here: its hash is the executor's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Protocol, TypeVar

import rlp
from eth_hash.auto import keccak

from evm_runtime.types import Address, Hash32

from ..signing import recover_validator

SIGNATURE_LENGTH = 65
ADDRESS_LENGTH = 20
HASH_LENGTH = 32
MAX_INTEGER = 2**64 - 1
"""Heights and rounds fit in 8 bytes (the seal encodes the round so)."""


class MessageCode(IntEnum):
    PROPOSAL = 0x12
    PREPARE = 0x13
    COMMIT = 0x14
    ROUND_CHANGE = 0x15


class MalformedMessage(ValueError):
    """Bytes that are not the canonical encoding of a message or certificate."""


# ----------------------------------------------------------------------------------------
# Quorum
# ----------------------------------------------------------------------------------------


def quorum(validator_count: int) -> int:
    """The votes a decision needs: ceil(2n/3) (Besu `calculateRequiredValidatorQuorum`).

    Any two quorums share at least f + 1 validators, so at least one honest one.
    """
    if validator_count < 1:
        raise ValueError("a validator set is never empty")
    return -(-2 * validator_count // 3)


def max_faulty(validator_count: int) -> int:
    """f = (n - 1) // 3: the Byzantine validators the protocol tolerates."""
    if validator_count < 1:
        raise ValueError("a validator set is never empty")
    return (validator_count - 1) // 3


# ----------------------------------------------------------------------------------------
# Signing (the enclave implements `Signer`; anyone can verify)
# ----------------------------------------------------------------------------------------


class Signer(Protocol):
    """A validator's key, held by its enclave (`enclave.identity.NodeIdentity` is one)."""

    @property
    def address(self) -> Address: ...

    def sign_hash(self, message_hash: bytes) -> bytes:
        """A recoverable secp256k1 signature `r ‖ s ‖ v` (v in 0..1) over
        `ledger.signing.validator_digest(message_hash)`."""
        ...


class Verifier(Protocol):
    def recover(self, message_hash: bytes, signature: bytes) -> Address | None:
        """The address whose key made `signature` over `message_hash`; None if it is not one."""
        ...


class Secp256k1Verifier:
    """Public-key recovery with libsecp256k1 (coincurve), over `ledger.signing.validator_digest`."""

    def recover(self, message_hash: bytes, signature: bytes) -> Address | None:
        if len(signature) != SIGNATURE_LENGTH or signature[64] > 1:
            return None
        return recover_validator(message_hash, signature)


DEFAULT_VERIFIER = Secp256k1Verifier()


# ----------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare:
    author: Address
    height: int
    round: int
    block_hash: Hash32
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Commit:
    author: Address
    height: int
    round: int
    block_hash: Hash32
    seal: bytes
    """The author's signature over `seal_hash(block_hash, round)`."""
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class RoundChange:
    author: Address
    height: int
    round: int
    """The round the author moves to."""
    prepared_round: int | None = None
    """The highest round in which the author saw a quorum of prepares, if any ..."""
    prepared_hash: Hash32 | None = None
    """... and the block they were for."""
    signature: bytes = b""
    prepared_block: bytes | None = None
    """Attached, not signed: the prepared block (absent inside a proposal's justification)."""
    prepares: tuple[Prepare, ...] = ()
    """Attached, not signed: the quorum of prepares for the prepared block."""

    def __post_init__(self) -> None:
        if (self.prepared_round is None) != (self.prepared_hash is None):
            raise ValueError("a prepared round and a prepared hash go together")
        if self.prepared_round is None and (self.prepared_block is not None or self.prepares):
            raise ValueError("nothing prepared: nothing to attach")

    def without_attachments(self) -> RoundChange:
        """The signed part only, as a proposal's justification carries it."""
        return replace(self, prepared_block=None, prepares=())


@dataclass(frozen=True, slots=True)
class Proposal:
    author: Address
    height: int
    round: int
    block_hash: Hash32
    block: bytes
    """The block as the executor encodes it; opaque to consensus."""
    signature: bytes = b""
    round_changes: tuple[RoundChange, ...] = ()
    """Round above 0: a quorum of round changes for this round (without attachments)."""
    prepares: tuple[Prepare, ...] = ()
    """When one of them names a prepared block: the prepares of the highest."""


Message = Proposal | Prepare | Commit | RoundChange
M = TypeVar("M", Proposal, Prepare, Commit, RoundChange)

_CODES: dict[type[Any], MessageCode] = {
    Proposal: MessageCode.PROPOSAL,
    Prepare: MessageCode.PREPARE,
    Commit: MessageCode.COMMIT,
    RoundChange: MessageCode.ROUND_CHANGE,
}


def code_of(message: Message) -> MessageCode:
    return _CODES[type(message)]


def _int(value: int) -> bytes:
    if not 0 <= value <= MAX_INTEGER:
        raise ValueError(f"{value} does not fit in 8 bytes")
    return value.to_bytes(8, "big").lstrip(b"\x00")


def _body(message: Message) -> list[Any]:
    head: list[Any] = [_int(code_of(message)), message.author, _int(message.height), _int(message.round)]
    match message:
        case Proposal():
            return [*head, message.block_hash, message.block]
        case Prepare():
            return [*head, message.block_hash]
        case Commit():
            return [*head, message.block_hash, message.seal]
        case RoundChange():
            if message.prepared_round is None or message.prepared_hash is None:
                return [*head, []]
            return [*head, [_int(message.prepared_round), message.prepared_hash]]


def encode_body(message: Message) -> bytes:
    """The bytes the author signs."""
    encoded: bytes = rlp.encode(_body(message))
    return encoded


def signing_hash(message: Message) -> Hash32:
    return Hash32(keccak(encode_body(message)))


def sign(message: M, signer: Signer) -> M:
    """`message` authored and signed by `signer`."""
    authored = replace(message, author=signer.address)
    return replace(authored, signature=signer.sign_hash(signing_hash(authored)))


def signed_by_author(message: Message, verifier: Verifier = DEFAULT_VERIFIER) -> bool:
    """Whether the signature is the named author's."""
    return verifier.recover(signing_hash(message), message.signature) == message.author


def _signed(message: Message) -> list[Any]:
    return [_body(message), message.signature]


def _wire(message: Message) -> list[Any]:
    match message:
        case Proposal():
            return [
                *_signed(message),
                [_signed(rc.without_attachments()) for rc in message.round_changes],
                [_signed(prepare) for prepare in message.prepares],
            ]
        case RoundChange():
            if message.prepared_block is None:
                return [*_signed(message), []]
            return [*_signed(message), [message.prepared_block, [_signed(p) for p in message.prepares]]]
        case Prepare() | Commit():
            return _signed(message)


def encode(message: Message) -> bytes:
    """The message as it travels between validators."""
    encoded: bytes = rlp.encode(_wire(message))
    return encoded


# -- decoding ----------------------------------------------------------------------------


def _list(item: Any, length: int | None = None) -> list[Any]:
    if not isinstance(item, list) or (length is not None and len(item) != length):
        raise MalformedMessage(f"expected a list of {length if length is not None else 'any'} items")
    return item


def _bytes(item: Any, length: int | None = None) -> bytes:
    if not isinstance(item, bytes) or (length is not None and len(item) != length):
        raise MalformedMessage(f"expected {length if length is not None else 'a'} byte string")
    return item


def _to_int(item: Any) -> int:
    raw = _bytes(item)
    if len(raw) > 8 or raw[:1] == b"\x00":
        raise MalformedMessage("integers are minimal and at most 8 bytes")
    return int.from_bytes(raw, "big")


def _decode_signed(item: Any) -> tuple[list[Any], bytes]:
    body, signature = _list(item, 2)
    return _list(body), _bytes(signature, SIGNATURE_LENGTH)


def _message_from(body: list[Any], signature: bytes, expected: MessageCode | None = None) -> Message:
    if len(body) < 4:
        raise MalformedMessage("a body starts with code, author, height and round")
    code_value = _to_int(body[0])
    if code_value not in MessageCode._value2member_map_:
        raise MalformedMessage(f"unknown message code {code_value:#x}")
    code = MessageCode(code_value)
    if expected is not None and code != expected:
        raise MalformedMessage(f"expected {expected.name}, found {code.name}")
    author = Address(_bytes(body[1], ADDRESS_LENGTH))
    height, round_ = _to_int(body[2]), _to_int(body[3])
    fields = body[4:]
    if code == MessageCode.PROPOSAL:
        block_hash, block = _list(fields, 2)
        return Proposal(
            author, height, round_, Hash32(_bytes(block_hash, HASH_LENGTH)), _bytes(block), signature
        )
    if code == MessageCode.PREPARE:
        (block_hash,) = _list(fields, 1)
        return Prepare(author, height, round_, Hash32(_bytes(block_hash, HASH_LENGTH)), signature)
    if code == MessageCode.COMMIT:
        block_hash, seal = _list(fields, 2)
        return Commit(
            author,
            height,
            round_,
            Hash32(_bytes(block_hash, HASH_LENGTH)),
            _bytes(seal, SIGNATURE_LENGTH),
            signature,
        )
    (prepared,) = _list(fields, 1)
    prepared = _list(prepared)
    if not prepared:
        return RoundChange(author, height, round_, signature=signature)
    prepared_round, prepared_hash = _list(prepared, 2)
    return RoundChange(
        author,
        height,
        round_,
        _to_int(prepared_round),
        Hash32(_bytes(prepared_hash, HASH_LENGTH)),
        signature,
    )


def _decode_prepares(item: Any) -> tuple[Prepare, ...]:
    prepares = []
    for entry in _list(item):
        prepare = _message_from(*_decode_signed(entry), expected=MessageCode.PREPARE)
        assert isinstance(prepare, Prepare)
        prepares.append(prepare)
    return tuple(prepares)


def _decode_wire(item: Any) -> Message:
    outer = _list(item)
    if len(outer) < 2:
        raise MalformedMessage("a message is [body, signature, …]")
    message = _message_from(*_decode_signed(outer[:2]))
    rest = outer[2:]
    match message:
        case Prepare() | Commit():
            if rest:
                raise MalformedMessage("prepares and commits carry nothing else")
            return message
        case Proposal():
            round_changes, prepares = _list(rest, 2)
            justification = []
            for entry in _list(round_changes):
                rc = _message_from(*_decode_signed(entry), expected=MessageCode.ROUND_CHANGE)
                assert isinstance(rc, RoundChange)
                justification.append(rc)
            return replace(message, round_changes=tuple(justification), prepares=_decode_prepares(prepares))
        case RoundChange():
            (attachment,) = _list(rest, 1)
            attachment = _list(attachment)
            if message.prepared_round is None:
                if attachment:
                    raise MalformedMessage("a round change that prepared nothing attaches nothing")
                return message
            block, prepares = _list(attachment, 2)
            return replace(message, prepared_block=_bytes(block), prepares=_decode_prepares(prepares))


def decode(data: bytes) -> Message:
    """The message `encode` made of `data`; MalformedMessage for anything else."""
    try:
        item = rlp.decode(data)
        message = _decode_wire(item)
    except MalformedMessage:
        raise
    except (rlp.DecodingError, ValueError) as error:
        raise MalformedMessage(str(error)) from error
    if encode(message) != data:
        raise MalformedMessage("not the canonical encoding")
    return message


# ----------------------------------------------------------------------------------------
# Commit seals and certificates
# ----------------------------------------------------------------------------------------


def seal_hash(block_hash: bytes, round_: int) -> Hash32:
    """What a commit seal signs: keccak(block_hash ‖ round as 8 bytes big-endian)."""
    if len(block_hash) != HASH_LENGTH:
        raise ValueError("a block hash is 32 bytes")
    return Hash32(keccak(bytes(block_hash) + round_.to_bytes(8, "big")))


def make_seal(signer: Signer, block_hash: Hash32, round_: int) -> bytes:
    return signer.sign_hash(seal_hash(block_hash, round_))


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """The proof that a block is final: a quorum of commit seals from one round."""

    round: int
    seals: tuple[bytes, ...]


def certificate_of(commits: Sequence[Commit]) -> CommitCertificate:
    """The certificate made of commits for one block in one round, ordered by author."""
    rounds = {commit.round for commit in commits}
    if len(rounds) != 1 or len({commit.block_hash for commit in commits}) != 1:
        raise ValueError("a certificate's seals are for one block in one round")
    ordered = sorted(commits, key=lambda commit: commit.author)
    return CommitCertificate(rounds.pop(), tuple(commit.seal for commit in ordered))


def certificate_signers(
    block_hash: bytes,
    certificate: CommitCertificate,
    validators: Collection[Address],
    verifier: Verifier = DEFAULT_VERIFIER,
) -> frozenset[Address] | None:
    """The validators whose seals `certificate` holds; None if any seal is not a distinct
    validator's over (block_hash, round)."""
    members = frozenset(validators)
    digest = seal_hash(block_hash, certificate.round)
    signers: set[Address] = set()
    for seal in certificate.seals:
        signer = verifier.recover(digest, seal)
        if signer is None or signer not in members or signer in signers:
            return None
        signers.add(signer)
    return frozenset(signers)


def verify_certificate(
    block_hash: bytes,
    certificate: CommitCertificate,
    validators: Collection[Address],
    verifier: Verifier = DEFAULT_VERIFIER,
) -> bool:
    """Whether `certificate` proves `block_hash` final under `validators`: every seal is a
    distinct validator's over (block_hash, certificate.round), and they are a quorum.

    This is all a client needs, besides the validator set of the block's height.
    """
    members = frozenset(validators)
    if not members:
        return False
    signers = certificate_signers(block_hash, certificate, members, verifier)
    return signers is not None and len(signers) >= quorum(len(members))


def encode_certificate(certificate: CommitCertificate) -> bytes:
    """`[round, [seal…]]`, for storage beside the block."""
    encoded: bytes = rlp.encode([_int(certificate.round), list(certificate.seals)])
    return encoded


def decode_certificate(data: bytes) -> CommitCertificate:
    try:
        round_, seals = _list(rlp.decode(data), 2)
        certificate = CommitCertificate(
            _to_int(round_), tuple(_bytes(seal, SIGNATURE_LENGTH) for seal in _list(seals))
        )
    except MalformedMessage:
        raise
    except (rlp.DecodingError, ValueError) as error:
        raise MalformedMessage(str(error)) from error
    if encode_certificate(certificate) != data:
        raise MalformedMessage("not the canonical encoding")
    return certificate
