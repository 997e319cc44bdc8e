"""The QBFT state machine of one validator: events in, actions out, no I/O, no clock.

One `QbftInstance` decides the blocks of successive heights with the other validators,
following QBFT as Besu and GoQuorum implement it (see `docs/consensus.md`). Its driver
feeds it events (a message received, a timer expired, the executor's answers, a certified
block fetched from a peer) and carries out the actions each call returns, *in order*
(persist the lock, broadcast, start the timer, ask the executor, commit a block). Given
the same events it returns the same actions: signatures are RFC 6979, so deterministic.

The rules, for height h, round r, n validators, quorum q = ceil(2n/3), f = (n-1)//3:

1. The proposer of (h, r) is `validators[(h + r) % n]`, the validators sorted by address.
2. Entering round r starts a timer of `base_timeout * 2**r`. When it expires the node
   moves to r + 1 and broadcasts ROUND-CHANGE(r + 1) naming its prepared block, if any,
   with the quorum of prepares that prepared it.
3. The proposer of round 0 asks the executor for a block (`BuildBlock`) and proposes it.
   The proposer of round r > 0 waits for a quorum of ROUND-CHANGEs for r; if any names a
   prepared block, it proposes the one of the highest prepared round, with its prepares;
   otherwise a block of its own. The round changes go with the proposal as its
   justification.
4. A PROPOSAL is accepted from the round's proposer only, when justified (round 0: no
   justification; round r > 0: a quorum of valid ROUND-CHANGEs for r, and the block of
   the highest prepared round they name, proven by a quorum of prepares), and once the
   executor says the block is valid (`ValidateBlock`). Accepting broadcasts PREPARE. A
   justified proposal for a later round moves the node to that round first.
5. A quorum of PREPAREs for the accepted block prepares (locks) it: the node records the
   block, its round and the prepares, and broadcasts COMMIT with its commit seal.
6. A quorum of COMMITs for one block in one round (any round of the height, the node's
   or an earlier one) decides it, once the executor has found the block valid:
   `CommitBlock` with the certificate made of their seals, and the next height starts.
7. ROUND-CHANGEs from f + 1 validators for rounds above the node's make it move to the
   highest round that f + 1 of them reached, and broadcast its own ROUND-CHANGE.

A message is dropped, and counted in `counters`, when it does not decode, its author is
not a validator, its signature is not its author's, or it breaks a rule above. One
message per (type, round, author) is kept: a second one with the same body is a
duplicate; one with another body is proof of equivocation, kept in `evidence`. Messages
for the next heights are kept (within a window) until the node gets there.

Catch-up is the driver's, helped by two hints: `Behind` (a validator spoke of a later
height: fetch certified blocks from it) and `PeerBehind` (a validator still asks for a
round change at a height this node decided: send it the certified blocks). A fetched
block comes back as `CertifiedBlockReceived`; its certificate is checked against the
validators, the executor validates it, and it is committed like a decided one.

Safety across restarts needs the *lock* (`LockState`): the round the node is in, the
block it prepared in that round, what it proposed in it, and the block it locked on
(its prepared block, with the prepares). The instance emits `PersistLock` before the
first broadcast that depends on a change (`encode_lock` gives the bytes to store), and
is given the last persisted lock back when it is made again after a crash; without it a
restarted node could contradict what it said before (a second prepare in one round, a
round change hiding its lock).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import rlp
from rlp.sedes import big_endian_int

from evm_runtime.types import Address, Hash32

from .messages import (
    DEFAULT_VERIFIER,
    Commit,
    CommitCertificate,
    M,
    MalformedMessage,
    Message,
    MessageCode,
    Prepare,
    Proposal,
    RoundChange,
    Signer,
    Verifier,
    certificate_of,
    code_of,
    decode,
    encode,
    encode_body,
    make_seal,
    max_faulty,
    quorum,
    seal_hash,
    sign,
    signing_hash,
    verify_certificate,
)

MAX_BACKOFF_EXPONENT = 16
"""Round timers stop doubling after this round (base_timeout * 65,536)."""

_RECOVERY_CACHE_SIZE = 4096


class Drop(StrEnum):
    """Why a message (or a fetched block) was dropped: the keys of `counters`."""

    MALFORMED = "malformed"
    NOT_VALIDATOR = "not_validator"
    BAD_SIGNATURE = "bad_signature"
    BAD_SEAL = "bad_seal"
    WRONG_PROPOSER = "wrong_proposer"
    UNJUSTIFIED = "unjustified_proposal"
    INVALID_ROUND_CHANGE = "invalid_round_change"
    OLD_HEIGHT = "old_height"
    FUTURE_OVERFLOW = "future_overflow"
    STALE_ROUND = "stale_round"
    ROUND_TOO_FAR = "round_too_far"
    DUPLICATE = "duplicate"
    EQUIVOCATION = "equivocation"
    INVALID_BLOCK = "invalid_block"
    BAD_CERTIFICATE = "bad_certificate"


@dataclass(frozen=True, slots=True)
class QbftConfig:
    base_timeout: float = 1.0
    """Round 0's timer, in the driver's unit of time; round r waits `base_timeout * 2**r`."""
    round_window: int = 64
    """Messages for rounds further ahead of the node's are dropped."""
    future_heights: int = 8
    """Messages and certified blocks for up to this many heights ahead are kept."""
    future_messages_per_validator: int = 512
    """At most this many messages of one validator are kept for later heights."""

    def __post_init__(self) -> None:
        if self.base_timeout <= 0:
            raise ValueError("the base timeout is positive")
        if self.round_window < 1 or self.future_heights < 1 or self.future_messages_per_validator < 1:
            raise ValueError("windows and limits are positive")


def proposer_of(validators: tuple[Address, ...], height: int, round_: int) -> Address:
    """The proposer of (height, round): round-robin over the validators sorted by address."""
    return validators[(height + round_) % len(validators)]


def round_timeout(config: QbftConfig, round_: int) -> float:
    """How long round `round_` lasts before the node asks for the next: exponential back-off."""
    return config.base_timeout * (1 << min(round_, MAX_BACKOFF_EXPONENT))


# ----------------------------------------------------------------------------------------
# Events (what the driver feeds in)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReceived:
    data: bytes
    """A message as another validator's node sent it (`messages.encode`)."""


@dataclass(frozen=True, slots=True)
class TimerExpired:
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class BlockBuilt:
    """The executor's answer to `BuildBlock`: a block for `height` on the committed chain."""

    height: int
    block_hash: Hash32
    block: bytes


@dataclass(frozen=True, slots=True)
class BlockValidated:
    """The executor's answer to `ValidateBlock`."""

    height: int
    block_hash: Hash32
    block: bytes
    valid: bool


@dataclass(frozen=True, slots=True)
class CertifiedBlockReceived:
    """A decided block and its certificate, fetched from a peer (catch-up)."""

    height: int
    block_hash: Hash32
    block: bytes
    certificate: CommitCertificate


Event = MessageReceived | TimerExpired | BlockBuilt | BlockValidated | CertifiedBlockReceived


# ----------------------------------------------------------------------------------------
# Actions (what the driver carries out, in order)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send `data` (the encoding of `message`) to every other validator."""

    message: Message
    data: bytes


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)start the node's one round timer; answer `TimerExpired(height, round)`."""

    height: int
    round: int
    duration: float


@dataclass(frozen=True, slots=True)
class BuildBlock:
    """Build a block for `height` on the committed chain; answer `BlockBuilt`."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValidateBlock:
    """Check that `block` is a valid block for `height` on the committed chain and that its
    hash is `block_hash`; answer `BlockValidated`."""

    height: int
    block_hash: Hash32
    block: bytes


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """The block is final: store it with its certificate (the next height has started)."""

    height: int
    block_hash: Hash32
    block: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class PersistLock:
    """Store `lock` durably before carrying out the actions that follow."""

    lock: LockState


@dataclass(frozen=True, slots=True)
class PeerBehind:
    """`peer` is still deciding `height`, below ours: it may be sent our certified blocks."""

    peer: Address
    height: int


@dataclass(frozen=True, slots=True)
class Behind:
    """`peer` is at `height`, above ours: fetch certified blocks from it."""

    peer: Address
    height: int


Action = Broadcast | StartTimer | BuildBlock | ValidateBlock | CommitBlock | PersistLock | PeerBehind | Behind


# ----------------------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedBlock:
    """A block this node saw a quorum of prepares for, in `round`."""

    round: int
    block_hash: Hash32
    block: bytes
    prepares: tuple[Prepare, ...]


@dataclass(frozen=True, slots=True)
class LockState:
    """What a node must remember across a restart to stay consistent with what it said."""

    height: int
    round: int = 0
    accepted_hash: Hash32 | None = None
    """The block this node prepared in `round`."""
    proposal: Proposal | None = None
    """This node's own proposal in `round`."""
    prepared: PreparedBlock | None = None


def encode_lock(lock: LockState) -> bytes:
    """`[height, round, accepted_hash | "", proposal | "", [] | [round, hash, block, [prepare…]]]`,
    the messages in their wire encoding: what the driver stores for `PersistLock`."""
    prepared: list[Any] = []
    if lock.prepared is not None:
        p = lock.prepared
        prepared = [p.round, p.block_hash, p.block, [encode(prepare) for prepare in p.prepares]]
    proposal = encode(lock.proposal) if lock.proposal is not None else b""
    encoded: bytes = rlp.encode([lock.height, lock.round, lock.accepted_hash or b"", proposal, prepared])
    return encoded


def decode_lock(data: bytes) -> LockState:
    """The lock `encode_lock` stored; MalformedMessage if `data` is not one."""
    try:
        height, round_, accepted, proposal, prepared = rlp.decode(data)
        if not (isinstance(accepted, bytes) and len(accepted) in (0, 32)) or not isinstance(prepared, list):
            raise MalformedMessage("not a lock")
        lock = LockState(
            big_endian_int.deserialize(height),
            big_endian_int.deserialize(round_),
            Hash32(accepted) if accepted else None,
            _decoded(proposal, Proposal) if proposal else None,
            _decoded_prepared(prepared) if prepared else None,
        )
    except MalformedMessage:
        raise
    except (rlp.DecodingError, rlp.DeserializationError, TypeError, ValueError) as error:
        raise MalformedMessage(f"not a lock: {error}") from error
    if encode_lock(lock) != data:
        raise MalformedMessage("not the canonical encoding of a lock")
    return lock


def _decoded(data: bytes, kind: type[M]) -> M:
    message = decode(data)
    if not isinstance(message, kind):
        raise MalformedMessage(f"expected a {kind.__name__}")
    return message


def _decoded_prepared(fields: list[Any]) -> PreparedBlock:
    round_, block_hash, block, prepares = fields
    if not (isinstance(block_hash, bytes) and len(block_hash) == 32 and isinstance(block, bytes)):
        raise MalformedMessage("not a prepared block")
    return PreparedBlock(
        big_endian_int.deserialize(round_),
        Hash32(block_hash),
        block,
        tuple(_decoded(prepare, Prepare) for prepare in prepares),
    )


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two different signed messages of one author for the same (type, height, round)."""

    first: Message
    second: Message

    @property
    def author(self) -> Address:
        return self.first.author


@dataclass
class _HeightState:
    """Everything about the height being decided; a new one for each height."""

    round: int = 0
    accepted_hash: Hash32 | None = None
    proposal: Proposal | None = None
    prepared: PreparedBlock | None = None
    seen: dict[tuple[MessageCode, int, Address], Message] = field(default_factory=dict)
    proposals: dict[int, Proposal] = field(default_factory=dict)
    prepares: dict[tuple[int, Hash32], dict[Address, Prepare]] = field(default_factory=dict)
    commits: dict[tuple[int, Hash32], dict[Address, Commit]] = field(default_factory=dict)
    round_changes: dict[int, dict[Address, RoundChange]] = field(default_factory=dict)
    candidates: dict[Hash32, dict[bytes, None]] = field(default_factory=dict)
    """Payloads seen for a block hash (proposals, round changes), not yet validated."""
    blocks: dict[tuple[Hash32, bytes], bool | None] = field(default_factory=dict)
    """What the executor said of (hash, payload); None while it is asked."""
    valid: dict[Hash32, bytes] = field(default_factory=dict)
    built: tuple[Hash32, bytes] | None = None
    build_requested: bool = False
    certified: dict[Hash32, tuple[bytes, CommitCertificate]] = field(default_factory=dict)


class _CachingVerifier:
    """Recovers each (hash, signature) once: prepares reappear inside round changes and
    proposals."""

    def __init__(self, inner: Verifier) -> None:
        self._inner = inner
        self._cache: dict[tuple[bytes, bytes], Address | None] = {}

    def recover(self, message_hash: bytes, signature: bytes) -> Address | None:
        key = (message_hash, signature)
        if key not in self._cache:
            if len(self._cache) >= _RECOVERY_CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = self._inner.recover(message_hash, signature)
        return self._cache[key]


# ----------------------------------------------------------------------------------------
# The state machine
# ----------------------------------------------------------------------------------------


class QbftInstance:
    """One validator's view of the protocol, from `height` on."""

    def __init__(
        self,
        validators: Iterable[Address],
        signer: Signer,
        height: int,
        *,
        config: QbftConfig | None = None,
        verifier: Verifier = DEFAULT_VERIFIER,
        lock: LockState | None = None,
    ) -> None:
        self.validators = tuple(sorted(set(validators)))
        self.address = signer.address
        if self.address not in self.validators:
            raise ValueError("the signer is not one of the validators")
        if height < 1:
            raise ValueError("heights start at 1 (0 is genesis)")
        self.config = config or QbftConfig()
        self.height = height
        self.quorum = quorum(len(self.validators))
        self.max_faulty = max_faulty(len(self.validators))
        self.counters: Counter[str] = Counter()
        self.evidence: list[Equivocation] = []
        self._members = frozenset(self.validators)
        self._signer = signer
        self._verifier = _CachingVerifier(verifier)
        self._h = _HeightState()
        if lock is not None and lock.height == height:
            self._h.round = lock.round
            self._h.accepted_hash = lock.accepted_hash
            self._h.proposal = lock.proposal
            self._h.prepared = lock.prepared
            if lock.prepared is not None:
                self._add_candidate(lock.prepared.block_hash, lock.prepared.block)
        self._future: dict[int, list[Message]] = {}
        self._future_count: Counter[Address] = Counter()
        self._future_certified: dict[int, CertifiedBlockReceived] = {}
        self._behind_reported: set[tuple[Address, int]] = set()
        self._peer_behind_reported: dict[Address, tuple[int, int]] = {}
        self._actions: list[Action] = []
        self._loopback: deque[Message] = deque()
        self._lock_dirty = False

    # -- public view ---------------------------------------------------------------------

    @property
    def round(self) -> int:
        return self._h.round

    @property
    def lock(self) -> LockState:
        h = self._h
        return LockState(self.height, h.round, h.accepted_hash, h.proposal, h.prepared)

    def proposer(self, height: int, round_: int) -> Address:
        return proposer_of(self.validators, height, round_)

    # -- entry points --------------------------------------------------------------------

    def start(self) -> list[Action]:
        """The first actions of a node that starts (or restarts) at `height`."""
        self._actions = []
        self._start_timer()
        h = self._h
        # restarted: say again what it said in this round (the same bodies, so duplicates)
        if h.proposal is not None:
            self._broadcast(h.proposal)
        if h.accepted_hash is not None:
            self._broadcast(sign(Prepare(self.address, self.height, h.round, h.accepted_hash), self._signer))
        if h.prepared is not None and h.prepared.round == h.round:
            seal = make_seal(self._signer, h.prepared.block_hash, h.round)
            commit = Commit(self.address, self.height, h.round, h.prepared.block_hash, seal)
            self._broadcast(sign(commit, self._signer))
        self._run()
        return self._flush()

    def handle(self, event: Event) -> list[Action]:
        self._actions = []
        match event:
            case MessageReceived(data):
                self._on_wire(data)
            case TimerExpired(height, round_):
                if height == self.height and round_ == self._h.round:
                    self._enter_round(round_ + 1, send_round_change=True)
            case BlockBuilt(height, block_hash, block):
                if height == self.height:
                    self._h.built = (block_hash, block)
                    self._set_validity(block_hash, block, True)
            case BlockValidated(height, block_hash, block, valid):
                if height == self.height and self._h.blocks.get((block_hash, block)) is None:
                    self._set_validity(block_hash, block, valid)
            case CertifiedBlockReceived():
                self._on_certified(event)
        self._run()
        return self._flush()

    # -- plumbing ------------------------------------------------------------------------

    def _emit(self, action: Action) -> None:
        self._actions.append(action)

    def _flush(self) -> list[Action]:
        if self._lock_dirty:
            self._emit(PersistLock(self.lock))
            self._lock_dirty = False
        actions, self._actions = self._actions, []
        return actions

    def _broadcast(self, message: Message) -> None:
        """Send a message this node signed, after persisting the lock it depends on; the
        node handles its own message as it handles others'."""
        if self._lock_dirty:
            self._emit(PersistLock(self.lock))
            self._lock_dirty = False
        self._emit(Broadcast(message, encode(message)))
        self._loopback.append(message)

    def _run(self) -> None:
        while True:
            self._progress()
            if not self._loopback:
                return
            self._on_message(self._loopback.popleft(), own=True)

    def _start_timer(self) -> None:
        self._emit(StartTimer(self.height, self._h.round, round_timeout(self.config, self._h.round)))

    def _signed(self, message: Message) -> bool:
        return self._verifier.recover(signing_hash(message), message.signature) == message.author

    # -- receiving -----------------------------------------------------------------------

    def _on_wire(self, data: bytes) -> None:
        try:
            message = decode(data)
        except MalformedMessage:
            self.counters[Drop.MALFORMED] += 1
            return
        if message.author not in self._members:
            self.counters[Drop.NOT_VALIDATOR] += 1
            return
        if not self._signed(message):
            self.counters[Drop.BAD_SIGNATURE] += 1
            return
        self._on_message(message, own=False)

    def _on_message(self, message: Message, *, own: bool) -> None:
        """A message whose signature is its author's (a validator's)."""
        if message.height < self.height:
            if not own:
                self.counters[Drop.OLD_HEIGHT] += 1
                if isinstance(message, RoundChange):
                    self._report_peer_behind(message)
            return
        if message.height > self.height:
            self._keep_for_later(message)
            return
        self._on_current(message, own=own)

    def _on_current(self, message: Message, *, own: bool) -> None:
        h = self._h
        if message.round > h.round + self.config.round_window:
            self.counters[Drop.ROUND_TOO_FAR] += 1
            return
        if message.round < h.round and not isinstance(message, Commit):
            self.counters[Drop.STALE_ROUND] += 1
            return
        key = (code_of(message), message.round, message.author)
        earlier = h.seen.get(key)
        if earlier is not None:
            if encode_body(earlier) == encode_body(message):
                self.counters[Drop.DUPLICATE] += 1
            else:
                self.counters[Drop.EQUIVOCATION] += 1
                self.evidence.append(Equivocation(earlier, message))
            return
        reason = None if own else self._invalid(message)
        if reason is not None:
            self.counters[reason] += 1
            return
        h.seen[key] = message
        match message:
            case Proposal():
                h.proposals[message.round] = message
                self._add_candidate(message.block_hash, message.block)
                if message.round > h.round:  # justified: a quorum moved there
                    self._enter_round(message.round, send_round_change=False)
            case Prepare():
                h.prepares.setdefault((message.round, message.block_hash), {})[message.author] = message
            case Commit():
                h.commits.setdefault((message.round, message.block_hash), {})[message.author] = message
            case RoundChange():
                h.round_changes.setdefault(message.round, {})[message.author] = message
                if message.prepared_hash is not None and message.prepared_block is not None:
                    self._add_candidate(message.prepared_hash, message.prepared_block)

    def _invalid(self, message: Message) -> Drop | None:
        """Why a validator's signed message for this height breaks the rules, if it does."""
        match message:
            case Proposal():
                if message.author != self.proposer(message.height, message.round):
                    return Drop.WRONG_PROPOSER
                if not self._justified(message):
                    return Drop.UNJUSTIFIED
            case Commit():
                signer = self._verifier.recover(seal_hash(message.block_hash, message.round), message.seal)
                if signer != message.author:
                    return Drop.BAD_SEAL
            case RoundChange():
                if message.prepared_round is not None and not (
                    message.prepared_round < message.round
                    and message.prepared_hash is not None
                    and message.prepared_block is not None
                    and self._prepared_certificate(
                        message.prepares, message.height, message.prepared_round, message.prepared_hash
                    )
                ):
                    return Drop.INVALID_ROUND_CHANGE
        return None

    def _prepared_certificate(
        self, prepares: Iterable[Prepare], height: int, round_: int, block_hash: Hash32
    ) -> bool:
        """Whether `prepares` are a quorum of distinct validators' prepares of the block."""
        authors: set[Address] = set()
        for prepare in prepares:
            if (prepare.height, prepare.round, prepare.block_hash) != (height, round_, block_hash):
                return False
            if prepare.author not in self._members or prepare.author in authors or not self._signed(prepare):
                return False
            authors.add(prepare.author)
        return len(authors) >= self.quorum

    def _justified(self, proposal: Proposal) -> bool:
        """Round 0 needs nothing. A later round needs a quorum of round changes for it and,
        if any names a prepared block, the block of the highest prepared round with a
        quorum of prepares for it (so a block that may have been decided is re-proposed)."""
        if proposal.round == 0:
            return not proposal.round_changes and not proposal.prepares
        authors: set[Address] = set()
        prepared: set[tuple[int, Hash32]] = set()
        for rc in proposal.round_changes:
            if (rc.height, rc.round) != (proposal.height, proposal.round) or rc.prepared_block is not None:
                return False
            if rc.author not in self._members or rc.author in authors or not self._signed(rc):
                return False
            if rc.prepared_round is not None and rc.prepared_hash is not None:
                if rc.prepared_round >= rc.round:
                    return False
                prepared.add((rc.prepared_round, rc.prepared_hash))
            authors.add(rc.author)
        if len(authors) < self.quorum:
            return False
        if not prepared:
            return not proposal.prepares
        highest = max(round_ for round_, _ in prepared)
        return (highest, proposal.block_hash) in prepared and self._prepared_certificate(
            proposal.prepares, proposal.height, highest, proposal.block_hash
        )

    def _keep_for_later(self, message: Message) -> None:
        if (message.author, message.height) not in self._behind_reported:
            self._behind_reported.add((message.author, message.height))
            self._emit(Behind(message.author, message.height))
        if (
            message.height > self.height + self.config.future_heights
            or self._future_count[message.author] >= self.config.future_messages_per_validator
        ):
            self.counters[Drop.FUTURE_OVERFLOW] += 1
            return
        self._future.setdefault(message.height, []).append(message)
        self._future_count[message.author] += 1

    def _report_peer_behind(self, message: RoundChange) -> None:
        """A round change for a height we decided: its author is stuck there."""
        mark = (message.height, message.round)
        if self._peer_behind_reported.get(message.author) != mark:
            self._peer_behind_reported[message.author] = mark
            self._emit(PeerBehind(message.author, message.height))

    def _on_certified(self, event: CertifiedBlockReceived) -> None:
        if event.height < self.height:
            return
        if event.height > self.height + self.config.future_heights:
            self.counters[Drop.FUTURE_OVERFLOW] += 1
            return
        if not verify_certificate(event.block_hash, event.certificate, self.validators, self._verifier):
            self.counters[Drop.BAD_CERTIFICATE] += 1
            return
        if event.height > self.height:
            self._future_certified[event.height] = event
            return
        self._h.certified[event.block_hash] = (event.block, event.certificate)
        self._add_candidate(event.block_hash, event.block)

    # -- blocks --------------------------------------------------------------------------

    def _add_candidate(self, block_hash: Hash32, block: bytes) -> None:
        self._h.candidates.setdefault(block_hash, {})[block] = None

    def _set_validity(self, block_hash: Hash32, block: bytes, valid: bool) -> None:
        self._h.blocks[(block_hash, block)] = valid
        if valid:
            self._h.valid.setdefault(block_hash, block)
        else:
            self.counters[Drop.INVALID_BLOCK] += 1

    def _validity(self, block_hash: Hash32, block: bytes) -> bool | None:
        """What the executor said of the block; None while unknown (then it is asked once)."""
        key = (block_hash, block)
        if key not in self._h.blocks:
            self._h.blocks[key] = None
            self._emit(ValidateBlock(self.height, block_hash, block))
        return self._h.blocks[key]

    def _valid_block(self, block_hash: Hash32) -> bytes | None:
        """A validated payload of `block_hash`; else the executor is asked about those seen."""
        if block_hash in self._h.valid:
            return self._h.valid[block_hash]
        for block in self._h.candidates.get(block_hash, {}):
            if self._validity(block_hash, block):
                return block
        return None

    def _own_block(self) -> tuple[Hash32, bytes] | None:
        h = self._h
        if h.built is None and not h.build_requested:
            h.build_requested = True
            self._emit(BuildBlock(self.height, h.round))
        return h.built

    # -- the rules -----------------------------------------------------------------------

    def _progress(self) -> None:
        """Apply the rules until none changes anything."""
        while (
            self._try_decide()
            or self._try_round_jump()
            or self._try_accept()
            or self._try_commit()
            or self._try_propose()
        ):
            pass

    def _try_decide(self) -> bool:
        """Rule 6 (and catch-up): a quorum of commits, or a certificate, for a valid block."""
        h = self._h
        for (_, block_hash), votes in h.commits.items():
            if len(votes) >= self.quorum:
                block = self._valid_block(block_hash)
                if block is not None:
                    self._decide(block_hash, block, certificate_of(list(votes.values())))
                    return True
        for block_hash, (block, certificate) in h.certified.items():
            if self._validity(block_hash, block):
                self._decide(block_hash, block, certificate)
                return True
        return False

    def _try_round_jump(self) -> bool:
        """Rule 7: f + 1 validators are in later rounds, so at least one honest one is."""
        h = self._h
        ahead: dict[Address, int] = {}
        for round_, changes in h.round_changes.items():
            if round_ > h.round:
                for author in changes:
                    ahead[author] = max(ahead.get(author, 0), round_)
        if len(ahead) <= self.max_faulty:
            return False
        target = sorted(ahead.values(), reverse=True)[self.max_faulty]
        self._enter_round(target, send_round_change=True)
        return True

    def _try_accept(self) -> bool:
        """Rule 4: prepare the round's proposal once the executor finds its block valid."""
        h = self._h
        proposal = h.proposals.get(h.round)
        if h.accepted_hash is not None or proposal is None:
            return False
        if not self._validity(proposal.block_hash, proposal.block):
            return False
        h.accepted_hash = proposal.block_hash
        self._lock_dirty = True
        self._broadcast(sign(Prepare(self.address, self.height, h.round, proposal.block_hash), self._signer))
        return True

    def _try_commit(self) -> bool:
        """Rule 5: a quorum of prepares for the accepted block locks it; send the seal."""
        h = self._h
        if h.accepted_hash is None or (h.prepared is not None and h.prepared.round >= h.round):
            return False
        votes = h.prepares.get((h.round, h.accepted_hash), {})
        if len(votes) < self.quorum:
            return False
        block = self._valid_block(h.accepted_hash)
        if block is None:
            return False
        prepares = tuple(sorted(votes.values(), key=lambda prepare: prepare.author))
        h.prepared = PreparedBlock(h.round, h.accepted_hash, block, prepares)
        self._lock_dirty = True
        seal = make_seal(self._signer, h.accepted_hash, h.round)
        commit = Commit(self.address, self.height, h.round, h.accepted_hash, seal)
        self._broadcast(sign(commit, self._signer))
        return True

    def _try_propose(self) -> bool:
        """Rule 3: the round's proposer proposes once it has what justifies a proposal."""
        h = self._h
        if h.proposal is not None or self.proposer(self.height, h.round) != self.address:
            return False
        proposal: Proposal
        if h.round == 0:
            own = self._own_block()
            if own is None:
                return False
            proposal = Proposal(self.address, self.height, 0, *own)
        else:
            changes = h.round_changes.get(h.round, {})
            if len(changes) < self.quorum:
                return False
            justification = tuple(rc.without_attachments() for rc in sorted(changes.values(), key=_by_author))
            prepared = [rc for rc in changes.values() if rc.prepared_round is not None]
            if not prepared:
                own = self._own_block()
                if own is None:
                    return False
                proposal = Proposal(self.address, self.height, h.round, *own, round_changes=justification)
            else:
                best = max(prepared, key=lambda rc: (rc.prepared_round, rc.author))
                assert best.prepared_hash is not None
                block = self._valid_block(best.prepared_hash)
                if block is None:
                    return False
                proposal = Proposal(
                    self.address,
                    self.height,
                    h.round,
                    best.prepared_hash,
                    block,
                    round_changes=justification,
                    prepares=best.prepares,
                )
        h.proposal = sign(proposal, self._signer)
        self._lock_dirty = True
        self._broadcast(h.proposal)
        return True

    # -- moving on -----------------------------------------------------------------------

    def _enter_round(self, round_: int, *, send_round_change: bool) -> None:
        h = self._h
        h.round = round_
        h.accepted_hash = None
        h.proposal = None
        self._lock_dirty = True
        h.proposals = {r: p for r, p in h.proposals.items() if r >= round_}
        h.prepares = {key: votes for key, votes in h.prepares.items() if key[0] >= round_}
        h.round_changes = {r: changes for r, changes in h.round_changes.items() if r >= round_}
        h.seen = {key: m for key, m in h.seen.items() if key[1] >= round_ or key[0] == MessageCode.COMMIT}
        self._start_timer()
        if send_round_change:
            change = RoundChange(self.address, self.height, round_)
            if h.prepared is not None:
                change = RoundChange(
                    self.address,
                    self.height,
                    round_,
                    h.prepared.round,
                    h.prepared.block_hash,
                    prepared_block=h.prepared.block,
                    prepares=h.prepared.prepares,
                )
            self._broadcast(sign(change, self._signer))

    def _decide(self, block_hash: Hash32, block: bytes, certificate: CommitCertificate) -> None:
        self._emit(CommitBlock(self.height, block_hash, block, certificate))
        self.height += 1
        self._h = _HeightState()
        self._lock_dirty = False  # the old height's lock no longer matters
        self._behind_reported.clear()
        self._start_timer()
        for message in self._future.pop(self.height, []):
            self._future_count[message.author] -= 1
            self._on_current(message, own=False)
        certified = self._future_certified.pop(self.height, None)
        if certified is not None:
            self._on_certified(certified)


def _by_author(message: Message) -> Address:
    return message.author
