"""Frames: how bytes travel on a connection between two validators, without I/O.

Everything on the wire is a frame: a 4-byte big-endian length, then that many bytes.
The handshake's three messages are plaintext frames of at most `handshake.MAX_MESSAGE`
bytes (`encode_plain`). After it, each direction seals its frames under its own session
key (AES-256-GCM):

    length (4) ‖ kind (1) ‖ sequence (8) ‖ ciphertext of the payload ‖ tag (16)

The sequence number starts at 0 in each direction and goes up by one a frame; the
receiver accepts only the next one, so a frame dropped, repeated, reordered or moved to
another connection is refused. The GCM nonce is the sequence number (never reused under
a key: each connection has fresh keys) and the kind and sequence are authenticated with
the payload, so nothing in a frame can be changed unseen. A length above the largest
frame allowed is refused before anything is read (`frame_length`).

Kinds: DATA carries a payload for the consumer; PING (empty) keeps an idle connection
proven alive; WELCOME (empty) is the acceptor's first frame, telling the dialer that
the connection was kept; GOODBYE (empty) is an end's last frame on a connection it
gives up for another one to the same peer (the other end reads up to it, so nothing
sent before it is lost).
"""

from __future__ import annotations

from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import FrameRefused

LENGTH_PREFIX = 4
KIND_LENGTH = 1
SEQUENCE_LENGTH = 8
TAG_LENGTH = 16
OVERHEAD = KIND_LENGTH + SEQUENCE_LENGTH + TAG_LENGTH
"""Bytes a sealed frame adds to its payload (after the length prefix)."""
MAX_SEQUENCE = 2 ** (8 * SEQUENCE_LENGTH) - 1
MAX_BODY = 2 ** (8 * LENGTH_PREFIX) - 1
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024
"""16 MiB: a proposal carries a whole block (30 M gas of calldata is under 8 MiB)."""
_NONCE_PAD = bytes(12 - SEQUENCE_LENGTH)

# Why a frame is refused (counted per peer by these names).
OVERSIZED = "oversized"
MALFORMED = "malformed"
BAD_SEQUENCE = "sequence"
BAD_TAG = "tag"
UNKNOWN_KIND = "kind"
EXHAUSTED = "sequence_exhausted"


class Kind(IntEnum):
    DATA = 0
    PING = 1
    WELCOME = 2
    GOODBYE = 3


def encode_plain(message: bytes) -> bytes:
    """A handshake message, length-prefixed."""
    return len(message).to_bytes(LENGTH_PREFIX, "big") + message


def frame_length(prefix: bytes, max_length: int) -> int:
    """The length a prefix announces; `FrameRefused(OVERSIZED)` above `max_length`."""
    length = int.from_bytes(prefix, "big")
    if length > max_length:
        raise FrameRefused(OVERSIZED, f"{length} bytes announced, at most {max_length}")
    return length


def max_body(max_payload: int) -> int:
    """The longest sealed frame (after its length prefix) for payloads of `max_payload`."""
    if not 0 <= max_payload <= MAX_BODY - OVERHEAD:
        raise ValueError(f"max_payload {max_payload} does not fit a frame")
    return max_payload + OVERHEAD


def _header(kind: Kind, sequence: int) -> bytes:
    return bytes([kind]) + sequence.to_bytes(SEQUENCE_LENGTH, "big")


class FrameSealer:
    """Seals this end's frames in order, under this direction's key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.sequence = 0
        """The sequence number of the next frame."""

    def seal(self, kind: Kind, payload: bytes) -> bytes:
        """The next frame, length prefix included."""
        sequence = self.sequence
        if sequence > MAX_SEQUENCE:
            raise FrameRefused(EXHAUSTED, "reconnect for fresh keys")
        self.sequence = sequence + 1
        header = _header(kind, sequence)
        body = header + self._aead.encrypt(_NONCE_PAD + header[KIND_LENGTH:], payload, header)
        return len(body).to_bytes(LENGTH_PREFIX, "big") + body


class FrameOpener:
    """Opens the peer's frames in order, under the other direction's key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.sequence = 0
        """The sequence number the next frame must carry."""

    def open(self, body: bytes) -> tuple[Kind, bytes]:
        """The kind and payload of a frame (without its length prefix), or `FrameRefused`."""
        if len(body) < OVERHEAD:
            raise FrameRefused(MALFORMED, f"a {len(body)}-byte frame")
        header = body[: KIND_LENGTH + SEQUENCE_LENGTH]
        sequence = int.from_bytes(header[KIND_LENGTH:], "big")
        if sequence != self.sequence:
            raise FrameRefused(BAD_SEQUENCE, f"frame {sequence}, expected {self.sequence}")
        try:
            payload = self._aead.decrypt(_NONCE_PAD + header[KIND_LENGTH:], body[len(header) :], header)
        except InvalidTag as error:
            raise FrameRefused(BAD_TAG, f"frame {sequence} is not authentic") from error
        try:
            kind = Kind(header[0])
        except ValueError as error:
            raise FrameRefused(UNKNOWN_KIND, f"kind {header[0]}") from error
        self.sequence = sequence + 1
        return kind, payload
