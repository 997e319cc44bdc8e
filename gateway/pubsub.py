"""Subscriptions (eth_subscribe): what each WebSocket connection is told as the chain moves.

The rules:
- kinds: `newHeads` (every new block's header), `logs` (every new log matching an address
  set and topic positions, as eth_getLogs matches them), `newPendingTransactions` (the hash
  of every admitted transaction, or the transaction itself when asked with `true`);
- notifications go, in order, into the subscriber's queue of at most `max_queued`
  messages and `max_queued_bytes` bytes; publishing never waits: a subscriber whose queue
  is full is marked overflowed and its connection is closed, the node and the other
  subscribers carry on;
- a connection holds at most `max_subscriptions` subscriptions.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from evm_runtime.chain import decode_header
from evm_runtime.exceptions import ConclaveError
from evm_runtime.transactions import DecodedTransaction
from evm_runtime.types import ExecutedTransaction, LogRecord
from ledger.store import BlockRecord, log_matches

from .params import LogFilter
from .views import header_view, log_view, pending_view, stored_log

SUBSCRIPTION_METHODS = ("eth_subscribe", "eth_unsubscribe")
"""Methods only a WebSocket connection serves (they need one to notify)."""
NEW_HEADS, LOGS, NEW_PENDING = "newHeads", "logs", "newPendingTransactions"
KINDS = (NEW_HEADS, LOGS, NEW_PENDING)
DEFAULT_MAX_QUEUED = 4_096
DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_SUBSCRIPTIONS = 1_000
BODY_FIELDS = ("size", "uncles", "withdrawals")
"""Block fields a newHeads header leaves out, as geth does."""

Json = Any


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    kind: str
    criteria: LogFilter | None = None
    full_transactions: bool = False


@dataclass(eq=False)
class Subscriber:
    """One connection's subscriptions and its bounded queue of outgoing messages."""

    max_queued: int = DEFAULT_MAX_QUEUED
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS
    token: str | None = None
    """The connection's login token: what it is shown of confidential data follows it."""
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    queued_bytes: int = 0
    queue: asyncio.Queue[str] = field(init=False)
    overflow: asyncio.Event = field(init=False)
    """Set once the queue has overflowed: the connection is to be closed."""

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.max_queued)
        self.overflow = asyncio.Event()

    @property
    def overflowed(self) -> bool:
        return self.overflow.is_set()

    def send(self, message: Json) -> bool:
        """Queue `message` (JSON-ready) without waiting; see `send_text`."""
        return self.send_text(json.dumps(message, separators=(",", ":")))

    def send_text(self, text: str) -> bool:
        """Queue an encoded message without waiting; False (and overflowed) if the queue is full."""
        if self.overflowed:
            return False
        if self.queued_bytes + len(text) > self.max_queued_bytes:
            self.overflow.set()
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflow.set()
            return False
        self.queued_bytes += len(text)
        return True

    def sent(self, text: str) -> None:
        """`text`, taken from the queue, has been written to the connection."""
        self.queued_bytes -= len(text)


def _notification(subscription: Subscription, encoded_result: str) -> str:
    """The eth_subscription message, around a result encoded once for every subscriber."""
    return (
        '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"'
        + subscription.id
        + '","result":'
        + encoded_result
        + "}}"
    )


def _encode(value: Json) -> str:
    return json.dumps(value, separators=(",", ":"))


class SubscriptionHub:
    """Every live subscriber; the node publishes blocks and pending transactions to it."""

    def __init__(self, new_id: Callable[[], str] = lambda: "0x" + os.urandom(16).hex()) -> None:
        self._subscribers: set[Subscriber] = set()
        self._new_id = new_id

    def __len__(self) -> int:
        return len(self._subscribers)

    def connect(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def disconnect(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def subscribe(
        self,
        subscriber: Subscriber,
        kind: str,
        criteria: LogFilter | None = None,
        full_transactions: bool = False,
    ) -> str:
        if len(subscriber.subscriptions) >= subscriber.max_subscriptions:
            raise OverflowError(f"at most {subscriber.max_subscriptions} subscriptions per connection")
        subscription = Subscription(self._new_id(), kind, criteria, full_transactions)
        subscriber.subscriptions[subscription.id] = subscription
        return subscription.id

    # -- publishing -----------------------------------------------------------------------

    def _interested(self, kind: str) -> Iterable[tuple[Subscriber, Subscription]]:
        for subscriber in list(self._subscribers):
            for subscription in list(subscriber.subscriptions.values()):
                if subscription.kind == kind:
                    yield subscriber, subscription

    def on_block(
        self, block: BlockRecord, opened: Callable[[str | None], list[ExecutedTransaction]] | None = None
    ) -> None:
        """Tell newHeads and logs subscribers about a committed block; `opened` gives the
        block's confidential transactions a token may see."""
        heads = list(self._interested(NEW_HEADS))
        log_subscriptions = list(self._interested(LOGS))
        if heads:
            view = _encode(
                {
                    key: value
                    for key, value in header_view(decode_header(block.header), 0).items()
                    if key not in BODY_FIELDS
                }
            )
            for subscriber, subscription in heads:
                subscriber.send_text(_notification(subscription, view))
        if not log_subscriptions:
            return
        if opened is not None and any(tx.sealed is not None for tx in block.transactions):
            self._logs_with_confidential(block, log_subscriptions, opened)
            return
        for executed in block.transactions:
            for entry in executed.logs:
                matching = [
                    (subscriber, subscription)
                    for subscriber, subscription in log_subscriptions
                    if subscription.criteria is None
                    or log_matches(subscription.criteria, entry.address, entry.topics)
                ]
                if not matching:
                    continue
                view = _encode(log_view(stored_log(block, executed, entry)))
                for subscriber, subscription in matching:
                    subscriber.send_text(_notification(subscription, view))

    def _logs_with_confidential(
        self,
        block: BlockRecord,
        log_subscriptions: list[tuple[Subscriber, Subscription]],
        opened: Callable[[str | None], list[ExecutedTransaction]],
    ) -> None:
        """Each subscriber gets the block's public logs and those of the confidential
        transactions its token may see, in log order."""
        public = [(executed, entry) for executed in block.transactions for entry in executed.logs]
        visible: dict[str | None, list[tuple[ExecutedTransaction, LogRecord]]] = {}
        for subscriber, subscription in log_subscriptions:
            token = subscriber.token
            if token not in visible:
                try:
                    records = opened(token) if token is not None else []
                except ConclaveError:  # an expired token sees public logs only
                    records = []
                visible[token] = sorted(
                    public + [(record, entry) for record in records for entry in record.logs],
                    key=lambda pair: pair[1].log_index,
                )
            for executed, entry in visible[token]:
                if subscription.criteria is None or log_matches(
                    subscription.criteria, entry.address, entry.topics
                ):
                    view = log_view(stored_log(block, executed, entry))
                    subscriber.send_text(_notification(subscription, _encode(view)))

    def on_pending(
        self, decoded: DecodedTransaction, may_see: Callable[[str | None], bool] | None = None
    ) -> None:
        """Tell newPendingTransactions subscribers about an admitted transaction (only those
        whose token `may_see` it, if it is confidential)."""
        full: str | None = None
        for subscriber, subscription in self._interested(NEW_PENDING):
            if may_see is not None and not may_see(subscriber.token):
                continue
            if subscription.full_transactions:
                if full is None:
                    full = _encode(pending_view(decoded))
                subscriber.send_text(_notification(subscription, full))
            else:
                subscriber.send_text(_notification(subscription, f'"0x{decoded.hash.hex()}"'))
