"""Subscriptions: routing of heads, logs and pending transactions, and bounded queues."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.node import Node
from gateway.params import LogFilter
from gateway.pubsub import LOGS, NEW_HEADS, NEW_PENDING, Subscriber, log_matches
from tests.evm_runtime.chainkit import recipient, sign
from tests.gateway.inprocess import ALICE

ADDRESSES = [bytes([i]) * 20 for i in range(3)]
TOPICS = [bytes([0x10 + i]) * 32 for i in range(3)]
Positions = tuple[tuple[bytes, ...] | None, ...]


def _criteria(addresses: tuple[bytes, ...] = (), topics: Positions = ()) -> LogFilter:
    return LogFilter(from_block=None, to_block=None, block_hash=None, addresses=addresses, topics=topics)


@given(
    st.sampled_from(ADDRESSES),
    st.lists(st.sampled_from(TOPICS), max_size=4).map(tuple),
    st.lists(st.sampled_from(ADDRESSES), max_size=2).map(tuple),
    st.lists(
        st.none() | st.lists(st.sampled_from(TOPICS), min_size=1, max_size=2).map(tuple), max_size=4
    ).map(tuple),
)
def test_matching_is_eth_getlogs_matching(
    address: bytes,
    topics: tuple[bytes, ...],
    addresses: tuple[bytes, ...],
    positions: Positions,
) -> None:
    expected = (not addresses or address in addresses) and all(
        accepted is None or (i < len(topics) and topics[i] in accepted)
        for i, accepted in enumerate(positions)
    )
    assert log_matches(_criteria(addresses, positions), address, topics) == expected


def _drain(subscriber: Subscriber) -> list[dict]:  # type: ignore[type-arg]
    messages = []
    while not subscriber.queue.empty():
        text = subscriber.queue.get_nowait()
        subscriber.sent(text)
        messages.append(json.loads(text))
    return messages


def test_blocks_and_pending_transactions_reach_the_right_subscriptions(node: Node) -> None:
    heads, pending, full, logs = Subscriber(), Subscriber(), Subscriber(), Subscriber()
    for subscriber in (heads, pending, full, logs):
        node.pubsub.connect(subscriber)
    heads_id = node.pubsub.subscribe(heads, NEW_HEADS)
    pending_id = node.pubsub.subscribe(pending, NEW_PENDING)
    node.pubsub.subscribe(full, NEW_PENDING, full_transactions=True)
    node.pubsub.subscribe(logs, LOGS, _criteria(addresses=(ADDRESSES[0],)))

    tx_hash = node.send_raw_transaction(sign(ALICE, nonce=0, value=1, to=recipient(1)))
    node.ordering.seal()

    [announced] = _drain(pending)
    assert announced["params"] == {"subscription": pending_id, "result": "0x" + tx_hash.hex()}
    [whole] = _drain(full)
    assert whole["params"]["result"]["hash"] == "0x" + tx_hash.hex()
    [head] = _drain(heads)
    assert head["method"] == "eth_subscription" and head["params"]["subscription"] == heads_id
    assert head["params"]["result"]["number"] == "0x1" and "transactions" not in head["params"]["result"]
    assert _drain(logs) == []  # a plain transfer logs nothing


def test_a_full_queue_overflows_instead_of_waiting() -> None:
    subscriber = Subscriber(max_queued=2)
    assert subscriber.send(1) and subscriber.send(2)
    assert not subscriber.send(3)
    assert subscriber.overflowed and subscriber.overflow.is_set()
    assert not subscriber.send(4)


def test_queued_bytes_are_bounded_too() -> None:
    subscriber = Subscriber(max_queued_bytes=10)
    assert subscriber.send_text("x" * 6)
    assert not subscriber.send_text("y" * 6)
    assert subscriber.overflowed


def test_written_messages_free_their_bytes() -> None:
    subscriber = Subscriber(max_queued_bytes=10)
    for _ in range(5):
        assert subscriber.send_text("z" * 8)
        subscriber.sent(subscriber.queue.get_nowait())
    assert subscriber.queued_bytes == 0 and not subscriber.overflowed


def test_subscriptions_per_connection_are_bounded(node: Node) -> None:
    subscriber = Subscriber(max_subscriptions=2)
    node.pubsub.subscribe(subscriber, NEW_HEADS)
    node.pubsub.subscribe(subscriber, NEW_HEADS)
    with pytest.raises(OverflowError, match="at most 2"):
        node.pubsub.subscribe(subscriber, NEW_HEADS)


def test_a_disconnected_subscriber_is_told_nothing(node: Node) -> None:
    subscriber = Subscriber()
    node.pubsub.connect(subscriber)
    node.pubsub.subscribe(subscriber, NEW_HEADS)
    node.pubsub.disconnect(subscriber)
    node.ordering.seal(allow_empty=True)
    assert _drain(subscriber) == [] and len(node.pubsub) == 0
