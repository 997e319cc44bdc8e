"""What validators send each other, over one transport connection per pair.

Every payload starts with one byte naming its channel:

- `CONSENSUS`: a QBFT message (`messages.encode`).
- `TRANSACTION`: a transaction a node admitted, for the others' pools (the enclave's
  `forward` bytes: raw if public, sealed if confidential), so every validator has it
  when it is its turn to propose and arms its round timer.
- `SYNC_REQUEST`: `rlp([first])`: "send me the decided blocks from height `first`".
- `SYNC_BLOCKS`: `rlp([[height, hash, proposal, certificate], …])`: decided blocks in
  order, each with its commit certificate; the receiver checks the certificate against
  the validators of the height, executes the proposal and commits it only if it executes
  to the certified hash.

Decoding refuses anything not canonical or out of bounds with `MalformedMessage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import rlp

from evm_runtime.types import Hash32

from .messages import (
    HASH_LENGTH,
    MAX_INTEGER,
    CommitCertificate,
    MalformedMessage,
    decode_certificate,
    encode_certificate,
)

MAX_SYNC_BLOCKS = 64
"""Decided blocks in one `SYNC_BLOCKS` answer, at most."""


class Channel(IntEnum):
    CONSENSUS = 1
    TRANSACTION = 2
    SYNC_REQUEST = 3
    SYNC_BLOCKS = 4


@dataclass(frozen=True, slots=True)
class DecidedBlock:
    """A committed block as a validator catching up receives it."""

    height: int
    block_hash: Hash32
    proposal: bytes
    certificate: CommitCertificate


def tagged(channel: Channel, body: bytes) -> bytes:
    return bytes([channel]) + body


def channel_of(payload: bytes) -> tuple[Channel, bytes]:
    """The channel of a payload and its body."""
    if not payload or payload[0] not in Channel._value2member_map_:
        raise MalformedMessage("a payload starts with a known channel byte")
    return Channel(payload[0]), payload[1:]


def _uint(value: Any) -> int:
    if not isinstance(value, bytes) or (value[:1] == b"\x00") or len(value) > 8:
        raise MalformedMessage("not a canonical integer")
    number = int.from_bytes(value, "big")
    if number > MAX_INTEGER:
        raise MalformedMessage("integer out of range")
    return number


def encode_sync_request(first: int) -> bytes:
    return tagged(Channel.SYNC_REQUEST, rlp.encode([first]))


def decode_sync_request(body: bytes) -> int:
    try:
        fields = rlp.decode(body)
    except rlp.DecodingError as error:
        raise MalformedMessage(str(error)) from None
    if not isinstance(fields, list) or len(fields) != 1:
        raise MalformedMessage("a sync request is [first height]")
    return _uint(fields[0])


def encode_sync_blocks(blocks: list[DecidedBlock]) -> bytes:
    return tagged(
        Channel.SYNC_BLOCKS,
        rlp.encode(
            [
                [block.height, block.block_hash, block.proposal, encode_certificate(block.certificate)]
                for block in blocks
            ]
        ),
    )


def decode_sync_blocks(body: bytes) -> list[DecidedBlock]:
    """Decided blocks in strictly consecutive heights; `MalformedMessage` otherwise."""
    try:
        items = rlp.decode(body)
    except rlp.DecodingError as error:
        raise MalformedMessage(str(error)) from None
    if not isinstance(items, list) or len(items) > MAX_SYNC_BLOCKS:
        raise MalformedMessage(f"a sync answer is a list of at most {MAX_SYNC_BLOCKS} blocks")
    blocks: list[DecidedBlock] = []
    for item in items:
        if not isinstance(item, list) or len(item) != 4 or not all(isinstance(f, bytes) for f in item):
            raise MalformedMessage("a decided block is [height, hash, proposal, certificate]")
        height, block_hash, proposal, certificate = item
        if len(block_hash) != HASH_LENGTH:
            raise MalformedMessage("a block hash is 32 bytes")
        block = DecidedBlock(_uint(height), Hash32(block_hash), proposal, decode_certificate(certificate))
        if blocks and block.height != blocks[-1].height + 1:
            raise MalformedMessage("decided blocks come in consecutive heights")
        blocks.append(block)
    return blocks
