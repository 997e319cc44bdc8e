"""Validators wired by hand, for scenario tests: nothing moves until the test says so.

Broadcasts wait in `outbox` until `deliver` / `flush`; the executor answers at once
(blocks are `simulation.make_block`, up to `build_until`); timers expire when `expire` is called. Validators
are numbered in address order, so the proposer of (height, round) is number
`(height + round) % n`. Numbers not in `honest` have keys only: tests sign their
messages by hand (a Byzantine node).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from evm_runtime.types import Hash32
from ledger.consensus.messages import Message, decode, encode
from ledger.consensus.qbft import (
    Action,
    BlockBuilt,
    BlockValidated,
    Broadcast,
    BuildBlock,
    CommitBlock,
    Event,
    MessageReceived,
    QbftConfig,
    QbftInstance,
    TimerExpired,
    ValidateBlock,
)

from .simulation import GENESIS_HASH, KeySigner, StoredBlock, block_is_valid, make_block


@dataclass
class Sent:
    sender: int
    message: Message
    data: bytes
    delivered_to: set[int] = field(default_factory=set)
    only: frozenset[int] | None = None
    """A message sent to these nodes alone (by a faulty node), never to the others."""


class Cluster:
    def __init__(
        self,
        n: int,
        *,
        honest: Iterable[int] | None = None,
        config: QbftConfig | None = None,
        auto_execute: bool = True,
        build_until: int = 1,
    ) -> None:
        self.signers = sorted((KeySigner.numbered(i) for i in range(n)), key=lambda s: s.address)
        self.validators = tuple(signer.address for signer in self.signers)
        self.honest = sorted(range(n) if honest is None else honest)
        self.config = config or QbftConfig()
        self.auto_execute = auto_execute
        self.build_until = build_until
        """The executor builds blocks up to this height only, so `flush` comes to rest."""
        self.nodes = {
            i: QbftInstance(self.validators, self.signers[i], 1, config=self.config) for i in self.honest
        }
        self.chains: dict[int, list[StoredBlock]] = {i: [] for i in self.honest}
        self.actions: dict[int, list[Action]] = {i: [] for i in self.honest}
        self.outbox: list[Sent] = []

    @property
    def n(self) -> int:
        return len(self.validators)

    def head(self, i: int) -> Hash32:
        return self.chains[i][-1].block_hash if self.chains[i] else GENESIS_HASH

    def start(self) -> None:
        for i in self.honest:
            self.perform(i, self.nodes[i].start())

    def handle(self, i: int, event: Event) -> list[Action]:
        actions = self.nodes[i].handle(event)
        self.perform(i, actions)
        return actions

    def perform(self, i: int, actions: Sequence[Action]) -> None:
        self.actions[i].extend(actions)
        for action in actions:
            match action:
                case Broadcast(message, data):
                    self.outbox.append(Sent(i, message, data))
                case BuildBlock(height, _) if self.auto_execute and height <= self.build_until:
                    self.handle(
                        i, BlockBuilt(height, *make_block(height, self.head(i), self.validators[i], 0))
                    )
                case ValidateBlock(height, block_hash, block) if self.auto_execute:
                    valid = block_is_valid(height, self.head(i), block_hash, block)
                    self.handle(i, BlockValidated(height, block_hash, block, valid))
                case CommitBlock(height, block_hash, block, certificate):
                    assert height == len(self.chains[i]) + 1
                    self.chains[i].append(StoredBlock(block_hash, block, certificate))

    def send(self, sender: int, message: Message, targets: Iterable[int]) -> None:
        """A message a test signed (as validator `sender`), delivered to `targets` only."""
        assert decode(encode(message)) == message
        sent = Sent(sender, message, encode(message), only=frozenset(targets))
        self.outbox.append(sent)
        self.deliver(sent, sent.only or ())

    def deliver(self, sent: Sent, targets: Iterable[int]) -> None:
        for target in targets:
            if sent.only is not None and target not in sent.only:
                continue
            if target in self.nodes and target != sent.sender and target not in sent.delivered_to:
                sent.delivered_to.add(target)
                self.handle(target, MessageReceived(sent.data))

    def flush(self, keep: Callable[[Sent, int], bool] = lambda sent, target: True) -> None:
        """Deliver every waiting message to every honest node `keep` allows, until quiet.
        A message is delivered once to each node; those refused wait for a later flush."""
        done = 0
        while done < len(self.outbox):
            sent = self.outbox[done]
            done += 1
            self.deliver(sent, [t for t in self.honest if keep(sent, t)])

    def expire(self, i: int) -> list[Action]:
        node = self.nodes[i]
        return self.handle(i, TimerExpired(node.height, node.round))

    def sent_by(self, i: int, kind: type[Message] | None = None) -> list[Message]:
        return [
            s.message for s in self.outbox if s.sender == i and (kind is None or isinstance(s.message, kind))
        ]
