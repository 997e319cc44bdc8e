"""A deterministic network of QBFT instances: logical time, one seeded random source.

`Simulation(schedule).run()` starts n validators and drives them through one event queue.
Until `schedule.stabilise_at` the network is hostile: messages arrive after random delays
(so out of order, often after the round timer), some are dropped or delivered twice,
partitions cut groups of nodes off, up to f honest nodes crash (losing everything but
their chain and their persisted lock; some crash right after sending a commit, between
two actions) and restart, and Byzantine test doubles (`ByzantineNode`) equivocate. From
then on it is synchronous: no drops, delays under `stable_delay`, every node up.

Every commit is checked as it happens:

- agreement: no two honest nodes commit different blocks at one height;
- validity: the block is valid on its parent, was proposed by the proposer of a round no
  later than its certificate's, and its certificate verifies against the validator set.

Liveness: once the network is stable, every honest node must commit up to
`AFTER_STABILISATION` heights past the highest any node had committed by then (and at
least past `schedule.heights`; honest proposers build blocks above it only once the
network is stable). The run stops when they all have, and `SimulationResult.live` says
whether they got there before the deadline.

Catch-up is the simplest that works: a node told `Behind` asks that peer for its certified
blocks, a node told `PeerBehind` sends them, both through the same hostile network.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from rlp.sedes import big_endian_int

from evm_runtime.types import Address, Hash32
from ledger.consensus.messages import (
    Commit,
    CommitCertificate,
    Message,
    Prepare,
    Proposal,
    RoundChange,
    decode,
    encode,
    make_seal,
    quorum,
    sign,
    verify_certificate,
)
from ledger.consensus.qbft import (
    Behind,
    BlockBuilt,
    BlockValidated,
    Broadcast,
    BuildBlock,
    CertifiedBlockReceived,
    CommitBlock,
    Event,
    MessageReceived,
    PeerBehind,
    PersistLock,
    QbftConfig,
    QbftInstance,
    StartTimer,
    TimerExpired,
    ValidateBlock,
    decode_lock,
    encode_lock,
    proposer_of,
)
from ledger.signing import validator_digest

GENESIS_HASH = Hash32(keccak(b"conclave/simulation/genesis"))
SYNC_BATCH = 8
"""Certified blocks a peer sends at once (the instance keeps `future_heights` ahead)."""
AFTER_STABILISATION = 2
"""Heights every honest node must decide once the network is stable (liveness)."""
EXECUTOR_DELAY = 0.05
"""The executor answers within this time."""


# ----------------------------------------------------------------------------------------
# Keys and blocks
# ----------------------------------------------------------------------------------------


class KeySigner:
    """A validator key as the enclave will hold it (eth_keys, recoverable, v in 0..1)."""

    def __init__(self, key: keys.PrivateKey) -> None:
        self.key = key
        self._address = Address(key.public_key.to_canonical_address())

    @classmethod
    def numbered(cls, number: int) -> KeySigner:
        return cls(keys.PrivateKey(keccak(b"conclave/simulation/key/%d" % number)))

    @property
    def address(self) -> Address:
        return self._address

    def sign_hash(self, message_hash: bytes) -> bytes:
        return bytes(self.key.sign_msg_hash(validator_digest(message_hash)).to_bytes())


def make_block(height: int, parent: Hash32, builder: Address, salt: int) -> tuple[Hash32, bytes]:
    """A block as the simulated executor builds it: `rlp([height, parent, builder, salt])`."""
    payload = rlp.encode([height, parent, builder, salt])
    return Hash32(keccak(payload)), payload


def block_is_valid(height: int, parent: Hash32, block_hash: bytes, payload: bytes) -> bool:
    """What the simulated executor checks: the encoding, the height, the parent, the hash."""
    try:
        fields = rlp.decode(payload)
        if not isinstance(fields, list) or len(fields) != 4:
            return False
        block_height = big_endian_int.deserialize(fields[0])
    except (rlp.DecodingError, rlp.DeserializationError):
        return False
    return block_height == height and fields[1] == parent and keccak(payload) == block_hash


# ----------------------------------------------------------------------------------------
# The schedule of one run
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    node: int
    at: float
    downtime: float
    after_commit: bool = False
    """Crash when the node next broadcasts a commit after `at`, before its next action."""


@dataclass(frozen=True)
class Partition:
    start: float
    end: float
    group: frozenset[int]
    """Cut off from the others (both ways) between `start` and `end`."""


@dataclass(frozen=True)
class Schedule:
    n: int
    seed: int
    heights: int = 5
    byzantine: int = 0
    """Nodes 0 .. byzantine - 1 are Byzantine test doubles."""
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    max_delay: float = 0.2
    """Before stabilisation, delays are uniform in [0, max_delay] (may exceed the timeout)."""
    stable_delay: float = 0.2
    """After stabilisation, delays are uniform in [0, stable_delay]."""
    stabilise_at: float = 0.0
    crashes: tuple[Crash, ...] = ()
    partitions: tuple[Partition, ...] = ()
    base_timeout: float = 1.0
    liveness_budget: float = 2_000.0
    """How long after stabilisation every honest node has to reach the target."""

    @classmethod
    def random(cls, n: int, seed: int, *, byzantine: int | None = None, heights: int = 5) -> Schedule:
        """A hostile schedule drawn from `seed`: up to f honest nodes crash (a lone
        validator may too), and (unless told otherwise) one node is Byzantine when f >= 1."""
        rng = random.Random(f"schedule/{n}/{seed}")
        f = (n - 1) // 3
        byzantine = min(f, 1) if byzantine is None else byzantine
        stabilise_at = rng.uniform(5.0, 40.0)
        crashes = []
        for node in rng.sample(range(byzantine, n), rng.randint(0, max(f, 1))):  # a lone validator too
            at = rng.uniform(0.0, stabilise_at * 0.6)
            for _ in range(rng.randint(1, 3)):
                crashes.append(Crash(node, at, rng.uniform(0.5, 8.0), after_commit=rng.random() < 0.5))
                at += rng.uniform(2.0, 12.0)
        partitions = []
        for _ in range(rng.randint(0, 3) if n > 1 else 0):
            start = rng.uniform(0.0, stabilise_at)
            group = frozenset(rng.sample(range(n), rng.randint(1, n - 1)))
            partitions.append(Partition(start, min(start + rng.uniform(1.0, 8.0), stabilise_at), group))
        return cls(
            n=n,
            seed=seed,
            heights=heights,
            byzantine=byzantine,
            drop_rate=rng.choice([0.0, 0.05, 0.2, 0.4]),
            duplicate_rate=rng.choice([0.0, 0.05]),
            max_delay=rng.choice([0.1, 0.5, 2.0, 4.0]),
            stable_delay=0.2,
            stabilise_at=stabilise_at,
            crashes=tuple(crashes),
            partitions=tuple(partitions),
        )


# ----------------------------------------------------------------------------------------
# Nodes
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredBlock:
    block_hash: Hash32
    block: bytes
    certificate: CommitCertificate


class HonestNode:
    """A validator: a `QbftInstance`, the simulated executor, its chain and its lock (the
    two things that survive a crash)."""

    def __init__(self, sim: Simulation, index: int, signer: KeySigner) -> None:
        self.sim = sim
        self.index = index
        self.signer = signer
        self.chain: list[StoredBlock] = []
        self.lock: bytes | None = None
        """The last `PersistLock`, as the node stores it (`encode_lock`)."""
        self.instance: QbftInstance | None = None
        self.incarnation = 0
        self.restarts = 0
        self.crash_after_commit: float | None = None
        """Armed: the downtime of a crash right after the next commit it broadcasts."""

    @property
    def up(self) -> bool:
        return self.instance is not None

    @property
    def head(self) -> Hash32:
        return self.chain[-1].block_hash if self.chain else GENESIS_HASH

    def boot(self) -> None:
        self.incarnation += 1
        lock = decode_lock(self.lock) if self.lock is not None else None
        self.instance = QbftInstance(
            self.sim.validators, self.signer, len(self.chain) + 1, config=self.sim.config, lock=lock
        )
        self.perform(self.instance.start())

    def crash(self, downtime: float) -> None:
        """Stop now; come back after `downtime` (at the latest when the network stabilises)."""
        if not self.up or self.sim.stable:
            return
        self.instance = None
        self.incarnation += 1
        incarnation = self.incarnation
        back_at = min(self.sim.now + downtime, self.sim.schedule.stabilise_at)

        def restart() -> None:
            if self.incarnation == incarnation:
                self.restarts += 1
                self.boot()

        self.sim.push(back_at - self.sim.now, restart)

    def handle(self, event: Event) -> None:
        if self.instance is not None:
            self.perform(self.instance.handle(event))

    def perform(self, actions: Sequence[Any]) -> None:
        sim = self.sim
        incarnation = self.incarnation
        for action in actions:
            if self.incarnation != incarnation:
                return  # crashed between two actions: the rest never happen
            match action:
                case Broadcast(message, data):
                    sim.observe(message)
                    sim.send(self.index, sim.others(self.index), data)
                    if isinstance(message, Commit) and self.crash_after_commit is not None:
                        downtime, self.crash_after_commit = self.crash_after_commit, None
                        self.crash(downtime)
                case StartTimer(height, round_, duration):
                    sim.at(duration, self, TimerExpired(height, round_))
                case BuildBlock(height, _):
                    built = make_block(height, self.head, self.signer.address, sim.rng.randrange(2**32))
                    delay = sim.rng.uniform(0.0, EXECUTOR_DELAY)
                    if height > sim.schedule.heights and not sim.stable:  # later heights: once stable
                        delay += sim.schedule.stabilise_at - sim.now
                    sim.at(delay, self, BlockBuilt(height, *built))
                case ValidateBlock(height, block_hash, block):
                    valid = height == len(self.chain) + 1 and block_is_valid(
                        height, self.head, block_hash, block
                    )
                    event = BlockValidated(height, block_hash, block, valid)
                    sim.at(sim.rng.uniform(0.0, EXECUTOR_DELAY), self, event)
                case CommitBlock(height, block_hash, block, certificate):
                    assert height == len(self.chain) + 1, "commits come in height order"
                    sim.check_commit(self, height, block_hash, block, certificate)
                    self.chain.append(StoredBlock(block_hash, block, certificate))
                case PersistLock(lock):
                    self.lock = encode_lock(lock)
                case PeerBehind(peer, height):
                    sim.send_blocks(self, sim.index_of[peer], height)
                case Behind(peer, _):
                    sim.request_blocks(self, sim.index_of[peer])
                case _:
                    raise AssertionError(f"unknown action {action!r}")


class ByzantineNode:
    """A faulty validator (a test double): it signs whatever may split the honest nodes.

    - As proposer it sends two different valid blocks for one height and round, each to
      half of the others and both to one of them, and votes for each in its half; in a
      round above 0 without a quorum of round changes it proposes anyway (unjustified).
    - For every block it hears proposed it prepares it to all, but sends its commit seal to
      a random few only, and prepares and commits a block of its own to the rest.
    - Its round changes hide what it prepared, and some ask for a round further on.
    - Now and then it sends garbage, a message with a broken signature, or one for a round
      far ahead.
    """

    up = True

    def __init__(self, sim: Simulation, index: int, signer: KeySigner) -> None:
        self.sim = sim
        self.index = index
        self.signer = signer
        self.address = signer.address
        self.chain: list[StoredBlock] = []
        self.round_changes: dict[tuple[int, int], dict[Address, RoundChange]] = {}
        self.proposed: set[tuple[int, int, bool]] = set()
        self.voted: set[tuple[int, int, bytes]] = set()
        self.changed: set[tuple[int, int]] = set()

    def boot(self) -> None:
        self.on_decided(0)

    def on_decided(self, height: int) -> None:
        """The network decided `height`: propose at round 0 of the next one, if it is ours."""
        if proposer_of(self.sim.validators, height + 1, 0) == self.address:
            self._propose(height + 1, 0)

    def handle(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            try:
                message = decode(event.data)
            except ValueError:
                return
            self._react(message)

    # -- helpers -----------------------------------------------------------------------

    def _split(self) -> tuple[list[int], list[int]]:
        others = self.sim.others(self.index)
        self.sim.rng.shuffle(others)
        cut = self.sim.rng.randint(0, len(others))
        return others[:cut], others[cut:]

    def _send(self, targets: Sequence[int], message: Message) -> None:
        if targets:
            self.sim.observe(message)
            self.sim.send(self.index, targets, encode(message))

    def _own_block(self, height: int) -> tuple[Hash32, bytes] | None:
        parent = self.sim.decided_hash(height - 1)
        if parent is None:
            return None
        return make_block(height, parent, self.address, self.sim.rng.randrange(2**32))

    def _prepare(self, targets: Sequence[int], height: int, round_: int, block_hash: Hash32) -> None:
        self._send(targets, sign(Prepare(self.address, height, round_, block_hash), self.signer))

    def _commit(self, targets: Sequence[int], height: int, round_: int, block_hash: Hash32) -> None:
        seal = make_seal(self.signer, block_hash, round_)
        self._send(targets, sign(Commit(self.address, height, round_, block_hash, seal), self.signer))

    # -- behaviour ---------------------------------------------------------------------

    def _react(self, message: Message) -> None:
        sim = self.sim
        height, round_ = message.height, message.round
        if isinstance(message, RoundChange):
            changes = self.round_changes.setdefault((height, round_), {})
            changes[message.author] = message
            if (height, round_) not in self.changed:
                self.changed.add((height, round_))
                hiding = sign(RoundChange(self.address, height, round_), self.signer)
                changes[self.address] = hiding
                self._send(sim.others(self.index), hiding)
                if sim.rng.random() < 0.5:
                    ahead = sign(RoundChange(self.address, height, round_ + 1), self.signer)
                    self._send(self._split()[0], ahead)
        if isinstance(message, Proposal) and (height, round_, message.block_hash) not in self.voted:
            self.voted.add((height, round_, message.block_hash))
            self._prepare(sim.others(self.index), height, round_, message.block_hash)
            few, rest = self._split()
            self._commit(few, height, round_, message.block_hash)
            own = self._own_block(height)
            if own is not None:
                self._prepare(rest, height, round_, own[0])
                self._commit(rest, height, round_, own[0])
        for r in (round_, round_ + 1):
            if r > 0 and proposer_of(sim.validators, height, r) == self.address:
                self._propose(height, r)
        if sim.rng.random() < 0.02:
            self._mischief(height, round_)

    def _propose(self, height: int, round_: int) -> None:
        first_block, second_block = self._own_block(height), self._own_block(height)
        if first_block is None or second_block is None:
            return
        justification: tuple[RoundChange, ...] = ()
        prepares: tuple[Prepare, ...] = ()
        changes = self.round_changes.get((height, round_), {})
        justified = round_ == 0 or len(changes) >= quorum(len(self.sim.validators))
        if (height, round_, justified) in self.proposed:
            return
        self.proposed.add((height, round_, justified))
        if round_ > 0:
            justification = tuple(rc.without_attachments() for rc in sorted(changes.values(), key=_author))
            prepared = [rc for rc in changes.values() if rc.prepared_hash is not None]
            if prepared:  # only that block is justified: the other half gets another one
                best = max(prepared, key=lambda rc: (rc.prepared_round or 0, rc.author))
                assert best.prepared_hash is not None and best.prepared_block is not None
                first_block = (best.prepared_hash, best.prepared_block)
                prepares = best.prepares
        first, second = self._split()
        one, two = (
            sign(
                Proposal(
                    self.address, height, round_, *block, round_changes=justification, prepares=prepares
                ),
                self.signer,
            )
            for block in (first_block, second_block)
        )
        self._send(first, one)
        self._send(second, two)
        self._send(first[:1], two)  # someone holds both: evidence
        for targets, proposal in ((first, one), (second, two)):
            self._prepare(targets, height, round_, proposal.block_hash)
            self._commit(targets, height, round_, proposal.block_hash)

    def _mischief(self, height: int, round_: int) -> None:
        sim, rng = self.sim, self.sim.rng
        targets = sim.others(self.index)
        choice = rng.randrange(3)
        if choice == 0:
            sim.send(self.index, targets, rng.randbytes(rng.randrange(1, 80)))
        elif choice == 1:
            forged = sign(Prepare(self.address, height, round_, Hash32(rng.randbytes(32))), self.signer)
            data = bytearray(encode(forged))
            data[-2] ^= 0xFF  # inside the signature
            sim.send(self.index, targets, bytes(data))
        else:
            self._send(targets, sign(RoundChange(self.address, height, round_ + 1_000), self.signer))


def _author(message: Message) -> Address:
    return message.author


# ----------------------------------------------------------------------------------------
# The network and the run
# ----------------------------------------------------------------------------------------


@dataclass
class SimulationResult:
    schedule: Schedule
    heights: list[int]
    """Committed blocks per honest node."""
    live: bool
    time: float
    events: int
    violations: list[str]
    counters: dict[str, int]
    evidence: int
    restarts: int


@dataclass(order=True)
class _Scheduled:
    time: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Simulation:
    def __init__(
        self, schedule: Schedule, *, config: QbftConfig | None = None, max_events: int = 400_000
    ) -> None:
        self.schedule = schedule
        self.rng = random.Random(f"run/{schedule.n}/{schedule.seed}")
        self.config = config or QbftConfig(base_timeout=schedule.base_timeout)
        self.max_events = max_events
        signers = [KeySigner.numbered(i) for i in range(schedule.n)]
        self.validators = tuple(sorted(signer.address for signer in signers))
        self.index_of = {signer.address: i for i, signer in enumerate(signers)}
        self.nodes: list[HonestNode | ByzantineNode] = [
            ByzantineNode(self, i, signer) if i < schedule.byzantine else HonestNode(self, i, signer)
            for i, signer in enumerate(signers)
        ]
        self.honest = [node for node in self.nodes if isinstance(node, HonestNode)]
        self.target = schedule.heights + AFTER_STABILISATION
        self.stabilised = False
        self.now = 0.0
        self._queue: list[_Scheduled] = []
        self._seq = 0
        self.decided: dict[int, Hash32] = {}
        self.proposed: dict[tuple[int, bytes], set[int]] = {}
        self.violations: list[str] = []

    # -- time and the network ----------------------------------------------------------

    def push(self, delay: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Scheduled(self.now + delay, self._seq, action))

    def at(self, delay: float, node: HonestNode, event: Event) -> None:
        """Deliver `event` to `node` after `delay`, unless it has crashed meanwhile."""
        incarnation = node.incarnation
        self.push(delay, lambda: node.handle(event) if node.incarnation == incarnation else None)

    @property
    def stable(self) -> bool:
        return self.now >= self.schedule.stabilise_at

    def others(self, index: int) -> list[int]:
        return [i for i in range(len(self.nodes)) if i != index]

    def _lost(self, sender: int, target: int) -> bool:
        if self.stable:
            return False
        for partition in self.schedule.partitions:
            if partition.start <= self.now < partition.end and (sender in partition.group) != (
                target in partition.group
            ):
                return True
        return self.rng.random() < self.schedule.drop_rate

    def _delay(self) -> float:
        return self.rng.uniform(0.0, self.schedule.stable_delay if self.stable else self.schedule.max_delay)

    def send(self, sender: int, targets: Sequence[int], data: bytes) -> None:
        for target in targets:
            if self._lost(sender, target):
                continue
            copies = 2 if not self.stable and self.rng.random() < self.schedule.duplicate_rate else 1
            node = self.nodes[target]
            for _ in range(copies):
                self.push(
                    self._delay(), lambda node=node: node.handle(MessageReceived(data)) if node.up else None
                )

    def send_blocks(self, sender: HonestNode, target: int, height: int) -> None:
        """The certified blocks `sender` has from `height` on, as one packet."""
        node = self.nodes[target]
        batch = sender.chain[height - 1 : height - 1 + SYNC_BATCH]
        if not batch or not isinstance(node, HonestNode) or self._lost(sender.index, target):
            return
        events = [
            CertifiedBlockReceived(h, stored.block_hash, stored.block, stored.certificate)
            for h, stored in enumerate(batch, start=height)
        ]

        def deliver() -> None:
            for event in events:
                node.handle(event)

        self.push(self._delay(), deliver)

    def request_blocks(self, requester: HonestNode, target: int) -> None:
        peer = self.nodes[target]
        if not isinstance(peer, HonestNode) or self._lost(requester.index, target):
            return

        def answer() -> None:
            if peer.up and requester.up:
                self.send_blocks(peer, requester.index, len(requester.chain) + 1)

        self.push(self._delay(), answer)

    # -- what is checked ---------------------------------------------------------------

    def observe(self, message: Message) -> None:
        """Note every proposal signed by the proposer of its round (for validity)."""
        if isinstance(message, Proposal) and message.author == proposer_of(
            self.validators, message.height, message.round
        ):
            self.proposed.setdefault((message.height, message.block_hash), set()).add(message.round)

    def decided_hash(self, height: int) -> Hash32 | None:
        return GENESIS_HASH if height == 0 else self.decided.get(height)

    def check_commit(
        self, node: HonestNode, height: int, block_hash: Hash32, block: bytes, certificate: CommitCertificate
    ) -> None:
        where = f"node {node.index} at height {height} (t={self.now:.2f})"
        if height not in self.decided:
            self.decided[height] = block_hash
            for byzantine in self.nodes:
                if isinstance(byzantine, ByzantineNode):
                    byzantine.on_decided(height)
        if self.decided[height] != block_hash:
            self.violations.append(
                f"agreement: {where} committed {block_hash.hex()}, another {self.decided[height].hex()}"
            )
        if not block_is_valid(height, node.head, block_hash, block):
            self.violations.append(f"validity: {where} committed a block that is not valid on its parent")
        if not verify_certificate(block_hash, certificate, self.validators):
            self.violations.append(f"validity: {where} committed a block whose certificate does not verify")
        if not any(r <= certificate.round for r in self.proposed.get((height, block_hash), ())):
            self.violations.append(f"validity: {where} committed a block no proposer proposed by its round")

    # -- the run -----------------------------------------------------------------------

    def _done(self) -> bool:
        return self.stabilised and all(node.up and len(node.chain) >= self.target for node in self.honest)

    def _schedule_faults(self) -> None:
        for crash in self.schedule.crashes:
            node = self.nodes[crash.node]
            assert isinstance(node, HonestNode), "only honest nodes crash"
            if crash.after_commit:

                def arm(node: HonestNode = node, downtime: float = crash.downtime) -> None:
                    node.crash_after_commit = downtime

                self.push(crash.at, arm)
            else:
                self.push(crash.at, lambda node=node, downtime=crash.downtime: node.crash(downtime))

        def stabilise() -> None:
            for node in self.honest:
                node.crash_after_commit = None
            highest = max(len(node.chain) for node in self.honest)
            self.target = max(self.target, highest + AFTER_STABILISATION)
            self.stabilised = True

        self.push(self.schedule.stabilise_at, stabilise)

    def run(self) -> SimulationResult:
        self._schedule_faults()
        for node in self.nodes:
            node.boot()
        deadline = self.schedule.stabilise_at + self.schedule.liveness_budget
        events = 0
        while self._queue and not self._done() and events < self.max_events:
            item = heapq.heappop(self._queue)
            if item.time > deadline:
                break
            self.now = item.time
            item.action()
            events += 1
        counters: dict[str, int] = {}
        for node in self.honest:
            if node.instance is not None:
                for key, value in node.instance.counters.items():
                    counters[str(key)] = counters.get(str(key), 0) + value
        return SimulationResult(
            schedule=self.schedule,
            heights=[len(node.chain) for node in self.honest],
            live=self._done(),
            time=self.now,
            events=events,
            violations=self.violations,
            counters=counters,
            evidence=sum(len(node.instance.evidence) for node in self.honest if node.instance is not None),
            restarts=sum(node.restarts for node in self.honest),
        )
