"""Sealed frames without sockets: anything changed, repeated, reordered or too long is refused."""

from __future__ import annotations

import os

import pytest

from ledger.network import FrameRefused
from ledger.network.frames import (
    BAD_SEQUENCE,
    BAD_TAG,
    LENGTH_PREFIX,
    MALFORMED,
    OVERHEAD,
    OVERSIZED,
    UNKNOWN_KIND,
    FrameOpener,
    FrameSealer,
    Kind,
    encode_plain,
    frame_length,
    max_body,
)

KEY = bytes(range(32))


def pair() -> tuple[FrameSealer, FrameOpener]:
    return FrameSealer(KEY), FrameOpener(KEY)


def body(frame: bytes) -> bytes:
    assert int.from_bytes(frame[:LENGTH_PREFIX], "big") == len(frame) - LENGTH_PREFIX
    return frame[LENGTH_PREFIX:]


def test_frames_open_in_order_with_their_kind_and_payload() -> None:
    sealer, opener = pair()
    payloads = [b"", b"x", os.urandom(5000)]
    for payload in payloads:
        frame = sealer.seal(Kind.DATA, payload)
        assert len(frame) == LENGTH_PREFIX + OVERHEAD + len(payload)
        assert opener.open(body(frame)) == (Kind.DATA, payload)
    assert opener.open(body(sealer.seal(Kind.PING, b""))) == (Kind.PING, b"")
    assert sealer.sequence == opener.sequence == 4


def test_the_payload_is_not_readable_on_the_wire() -> None:
    frame = FrameSealer(KEY).seal(Kind.DATA, b"confidential transaction")
    assert b"confidential" not in frame


@pytest.mark.parametrize(
    "position", [0, 1, 8, 9, -17, -1], ids=["kind", "seq-high", "seq-low", "data", "data-end", "tag"]
)
def test_a_changed_byte_is_refused(position: int) -> None:
    sealer, opener = pair()
    tampered = bytearray(body(sealer.seal(Kind.DATA, b"a payload of some length")))
    tampered[position] ^= 1
    with pytest.raises(FrameRefused) as refused:
        opener.open(bytes(tampered))
    assert refused.value.reason in (BAD_TAG, BAD_SEQUENCE)
    assert opener.sequence == 0


def test_a_repeated_or_skipped_frame_is_refused() -> None:
    sealer, opener = pair()
    first, second, third = (body(sealer.seal(Kind.DATA, bytes([i]))) for i in range(3))
    opener.open(first)
    for wrong in (first, third):
        with pytest.raises(FrameRefused) as refused:
            opener.open(wrong)
        assert refused.value.reason == BAD_SEQUENCE
    assert opener.open(second) == (Kind.DATA, b"\x01")


def test_a_frame_under_another_key_is_refused() -> None:
    frame = FrameSealer(os.urandom(32)).seal(Kind.DATA, b"payload")
    with pytest.raises(FrameRefused) as refused:
        FrameOpener(KEY).open(body(frame))
    assert refused.value.reason == BAD_TAG


def test_a_short_frame_and_an_unknown_kind_are_refused() -> None:
    with pytest.raises(FrameRefused) as refused:
        FrameOpener(KEY).open(bytes(OVERHEAD - 1))
    assert refused.value.reason == MALFORMED
    frame = FrameSealer(KEY).seal(7, b"")  # type: ignore[arg-type]
    with pytest.raises(FrameRefused) as refused:
        FrameOpener(KEY).open(body(frame))
    assert refused.value.reason == UNKNOWN_KIND


def test_lengths_are_bounded_before_reading() -> None:
    assert frame_length((100).to_bytes(4, "big"), 100) == 100
    with pytest.raises(FrameRefused) as refused:
        frame_length((101).to_bytes(4, "big"), 100)
    assert refused.value.reason == OVERSIZED
    assert max_body(1024) == 1024 + OVERHEAD
    with pytest.raises(ValueError):
        max_body(2**32)
    assert encode_plain(b"abc") == b"\x00\x00\x00\x03abc"
