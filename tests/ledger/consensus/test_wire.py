"""The payloads validators exchange: channel bytes and the block-sync encodings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evm_runtime.types import Hash32
from ledger.consensus.messages import CommitCertificate, MalformedMessage
from ledger.consensus.wire import (
    MAX_SYNC_BLOCKS,
    Channel,
    DecidedBlock,
    channel_of,
    decode_sync_blocks,
    decode_sync_request,
    encode_sync_blocks,
    encode_sync_request,
    tagged,
)

seals = st.lists(st.binary(min_size=65, max_size=65), min_size=1, max_size=4).map(tuple)
certificates = st.builds(CommitCertificate, st.integers(0, 2**32), seals)


@st.composite
def decided_runs(draw: st.DrawFn) -> list[DecidedBlock]:
    first = draw(st.integers(1, 2**40))
    count = draw(st.integers(0, 5))
    return [
        DecidedBlock(
            first + i,
            Hash32(draw(st.binary(min_size=32, max_size=32))),
            draw(st.binary(max_size=200)),
            draw(certificates),
        )
        for i in range(count)
    ]


@given(decided_runs())
def test_decided_blocks_round_trip(blocks: list[DecidedBlock]) -> None:
    channel, body = channel_of(encode_sync_blocks(blocks))
    assert channel is Channel.SYNC_BLOCKS
    assert decode_sync_blocks(body) == blocks


@given(st.integers(0, 2**64 - 1))
def test_sync_requests_round_trip(first: int) -> None:
    channel, body = channel_of(encode_sync_request(first))
    assert channel is Channel.SYNC_REQUEST and decode_sync_request(body) == first


@given(st.binary(max_size=300))
def test_anything_else_is_refused_or_understood(body: bytes) -> None:
    for decode in (decode_sync_blocks, decode_sync_request):
        try:
            decode(body)
        except MalformedMessage:
            pass


def test_blocks_out_of_order_or_too_many_are_refused() -> None:
    certificate = CommitCertificate(0, (bytes(65),))
    block = DecidedBlock(5, Hash32(bytes(32)), b"p", certificate)
    gap = encode_sync_blocks([block, DecidedBlock(7, Hash32(bytes(32)), b"p", certificate)])
    with pytest.raises(MalformedMessage, match="consecutive"):
        decode_sync_blocks(channel_of(gap)[1])
    many = [DecidedBlock(1 + i, Hash32(bytes(32)), b"", certificate) for i in range(MAX_SYNC_BLOCKS + 1)]
    with pytest.raises(MalformedMessage, match="at most"):
        decode_sync_blocks(channel_of(encode_sync_blocks(many))[1])


def test_an_unknown_channel_is_refused() -> None:
    assert channel_of(tagged(Channel.CONSENSUS, b"x")) == (Channel.CONSENSUS, b"x")
    for payload in (b"", b"\x00", b"\x09abc"):
        with pytest.raises(MalformedMessage):
            channel_of(payload)
