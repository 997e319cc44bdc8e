"""The ordering service: turns waiting transactions into committed blocks, with the other
validators, by QBFT (`ledger.consensus.qbft`).

`Ordering` drives one `QbftInstance`: it carries out the actions the state machine asks
for (persist the lock, broadcast, start the round timer, build or validate a block,
commit one) and feeds it the answers, messages and timeouts. With one validator the same
code runs with a quorum of one: the node's own proposal, prepare and commit decide the
block at once, within `seal()`.

When to build: the round-0 proposer builds a block once transactions are ready and no
more have arrived for a moment (or every `block_time` seconds, if set, even empty), and
an empty one when half its round has passed with none ready while the others wait; a
later round's proposer builds at once. A round timer runs only while there is something
to decide (transactions are ready, a validator spoke at this height, or blocks are
timed): an idle network makes no blocks and changes no rounds.

Blocks decided while a node was away come from its peers (`ledger.consensus.wire`): it
asks every `SYNC_SECONDS`, and when a validator speaks of a later height; it commits a
block only if it executes to the certified hash (so to the same state root) and its
certificate is a quorum of the validators at its height (of a reopening block, of those it
installs: `reopen`, `governance.reopening`).

Execution and signatures are handed in (`BlockExecutor`, `Signer`): this package never
imports the enclave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol, TypeVar

from evm_runtime.exceptions import InvalidRequest
from evm_runtime.transactions import DecodedTransaction
from evm_runtime.types import Address, Hash32

from .consensus.messages import (
    Commit,
    MalformedMessage,
    Signer,
    certificate_of,
    decode,
    decode_certificate,
    encode_certificate,
    make_seal,
    quorum,
    sign,
    verify_certificate,
)
from .consensus.qbft import (
    Action,
    Behind,
    BlockBuilt,
    BlockValidated,
    Broadcast,
    BuildBlock,
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
)
from .consensus.wire import (
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
from .mempool import Mempool
from .network.interfaces import Endpoint, PeerNetwork
from .store import BlockRecord, LedgerStore

log = logging.getLogger(__name__)
T = TypeVar("T")

GATHER_TICK_SECONDS = 0.002
MAX_GATHER_SECONDS = 0.05
TIME_LEAD = 3
"""Seconds a proposed block's time may be ahead of the proposer's clock (bursts of blocks
come faster than one a second; validators accept up to 15)."""
MIN_PROPOSAL = 32
"""Transactions a proposal may always hold, however slow execution was."""
SYNC_SECONDS = 2.0
"""How often a validator asks its peers for blocks it may have missed."""
MAX_SYNC_BYTES = 8 * 1024 * 1024
"""The most proposal bytes one sync answer carries (and at least one block)."""
SYNC_ANSWER_SECONDS = 0.1
"""The least time between two sync answers to one peer: a request sooner waits (and the
transport reads nothing more from that peer meanwhile), blocks sent unasked sooner are not
sent. A validator asking without pause costs this node one answer a tenth of a second."""


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """A block made from a batch, and the transactions the state refused."""

    block: BlockRecord
    dropped: tuple[tuple[DecodedTransaction, str], ...] = ()
    payload: bytes = b""
    """The block as a proposal to the other validators (opaque here: the enclave makes and
    opens it, since confidential transactions travel in it)."""
    installs: tuple[Address, ...] = ()
    """The validators a reopening block installs (`governance.reopening`): its certificate
    is theirs, not its parent's validators'."""


@dataclass(frozen=True, slots=True)
class ProposalVerdict:
    """What the executor found of a proposed block: the block, or why it is refused."""

    result: ExecutionResult | None
    reason: str = ""


class BlockExecutor(Protocol):
    """What the ordering service needs from execution (the enclave implements it)."""

    def account_nonces(self, addresses: Sequence[Address]) -> list[int]: ...

    def next_base_fee(self) -> int: ...

    def execute(self, batch: Sequence[DecodedTransaction], timestamp: int) -> ExecutionResult: ...

    def validate_proposal(self, payload: bytes, block_hash: Hash32) -> ProposalVerdict: ...

    def block_payload(self, number: int) -> bytes: ...

    def committed(self, block: BlockRecord) -> None: ...


ValidatorSet = Mapping[Address, Endpoint | None]
"""The validators at the head, with where each listens (None: nowhere this node can dial)."""


class Ordering:
    """Orders blocks with the validators `validators()` names at the head."""

    def __init__(
        self,
        store: LedgerStore,
        pool: Mempool,
        executor: BlockExecutor,
        signer: Signer,
        validators: Callable[[], ValidatorSet],
        *,
        network: PeerNetwork | None = None,
        sync_peers: Mapping[Address, Endpoint] | None = None,
        block_time: float | None = None,
        round_timeout: float = 1.0,
        on_block: Callable[[BlockRecord], None] = lambda block: None,
        on_transaction: Callable[[bytes], None] = lambda data: None,
        clock: Callable[[], float] = time.time,
        execute_apart: bool = False,
        admissions_pending: Callable[[], bool] = lambda: False,
    ) -> None:
        """`execute_apart`: the executor runs in another process (an enclave process), so
        blocks execute on a worker thread even with one validator (`_executing`), and
        blocks built back to back are gathered too (`run`). `admissions_pending`: whether
        transactions are on their way to the pool (an admission call in flight: `_gather`)."""
        self._store = store
        self._pool = pool
        self._executor = executor
        self._signer = signer
        self._validators_at_head = validators
        self._network = network
        self._sync_peers = dict(sync_peers or {})
        """Peers besides the validators that decided blocks are fetched from (the validator
        a node joined from: after a reopening, the validators at an old head are gone)."""
        self._block_time = block_time
        self._config = QbftConfig(base_timeout=round_timeout)
        self._on_block = on_block
        self._on_transaction = on_transaction
        self._clock = clock
        self._execute_apart = execute_apart
        self._admissions_pending = admissions_pending
        self._wake = asyncio.Event()
        self.time_offset = 0
        """Seconds added to the clock for block timestamps (dev chains travel in time)."""
        self.next_timestamp: int | None = None
        """The timestamp of the next block only, if set (dev chains)."""
        self.min_interval = 0.0
        """Seconds that must pass between two blocks (the network's block time; 0: none)."""
        self._last_sealed = 0.0
        self._validators: ValidatorSet = {}
        self._instance: QbftInstance | None = None
        self._events: deque[Event] = deque()
        self._draining = False
        self._build: BuildBlock | None = None
        """The block the state machine asked this node to build, until it is built."""
        self._results: dict[Hash32, ExecutionResult] = {}
        """Blocks of the height being decided, as built or validated here."""
        self._timer: asyncio.TimerHandle | None = None
        self._idle_timer: StartTimer | None = None
        """A round-0 timer held back while there is nothing to decide."""
        self._empty_build: asyncio.TimerHandle | None = None
        self._started = False
        self._head_number = self._head_timestamp = 0
        self._building = False
        self._executing_now = 0
        """Blocks being executed on worker threads (built or validated) for this node."""
        self._last_execution = 0.0
        self._seconds_per_transaction = 0.0
        """How long the last proposal this node built took, per transaction."""
        self._tasks: set[asyncio.Task[object]] = set()
        self._touched: list[Address] = []
        """Senders whose waiting transactions may have gone stale with the next block."""
        self._last_committed: BlockRecord | None = None
        self.counters: dict[str, int] = {
            "synced_blocks": 0,
            "refused_sync_blocks": 0,
            "refused_proposals": 0,
            "malformed_payloads": 0,
            "sync_answers_paced": 0,
        }
        self._answered: dict[Address, float] = {}
        """When each peer was last sent decided blocks (`SYNC_ANSWER_SECONDS`)."""

    # -- the validator set ------------------------------------------------------------------

    @property
    def height(self) -> int:
        """The height being decided: one above the head."""
        return self._head_number + 1

    def _read_head(self) -> None:
        head = self._store.head()
        assert head is not None, "genesis is stored before ordering starts"
        self._head_number, self._head_timestamp = head.number, head.timestamp

    @property
    def validators(self) -> tuple[Address, ...]:
        return tuple(sorted(self._validators))

    @property
    def instance(self) -> QbftInstance | None:
        """The state machine; None while this node is not a validator at the head."""
        return self._instance

    def _follow_validators(self, *, restart: bool = False) -> bool:
        """Take the validator set at the head: a new one (or `restart`) starts a new state
        machine at the next height. Whether the set changed."""
        validators = dict(self._validators_at_head())
        changed = validators != self._validators
        if changed:
            self._validators = validators
            if self._network is not None:
                named = {address: where for address, where in validators.items() if where is not None}
                self._network.update_peers({**self._sync_peers, **named})
        if changed or restart:
            self._new_instance()
        return changed

    def _new_instance(self) -> None:
        """A state machine for the next height, with the lock saved for it if any."""
        self._cancel_timers()
        self._build = None
        self._results.clear()
        self._events.clear()
        if self._signer.address not in self._validators:
            self._instance = None
            return
        height = self.height
        saved = self._store.consensus_lock()
        lock = decode_lock(saved[1]) if saved is not None and saved[0] == height else None
        self._instance = QbftInstance(self._validators, self._signer, height, config=self._config, lock=lock)
        self._carry_out(self._instance.start(), self._instance)
        self._drain()

    def reset(self) -> None:
        """The stored chain changed under the state machine (a dev chain's revert): start over
        at the new head."""
        self._read_head()
        self._follow_validators(restart=True)

    # -- the state machine's actions ----------------------------------------------------------

    def _feed(self, event: Event) -> None:
        self._events.append(event)
        self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._events and self._instance is not None:
                instance = self._instance
                self._carry_out(instance.handle(self._events.popleft()), instance)
        finally:
            self._draining = False

    def _carry_out(self, actions: list[Action], instance: QbftInstance) -> None:
        for action in actions:
            if instance is not self._instance:  # a commit changed the validators: the rest is stale
                return
            match action:
                case PersistLock(lock):
                    if len(self._validators) > 1:  # alone, there is no one to contradict
                        self._store.save_consensus_lock(lock.height, encode_lock(lock))
                case Broadcast(_, data):
                    if self._network is not None:
                        self._network.broadcast(tagged(Channel.CONSENSUS, data))
                case StartTimer():
                    self._start_timer(action)
                case BuildBlock():
                    self._build = action
                    if action.round > 0:  # the others wait for this node: build at once
                        self._in_background(partial(self._build_off_loop, True), self._build_now, True)
                    else:
                        self._wake.set()
                case ValidateBlock():
                    work = partial(self._validate_off_loop, instance, action)
                    self._in_background(work, self._validate_now, action)
                case CommitBlock(height, block_hash, _, certificate):
                    if height != self.height:  # committed already, from a peer's certified copy
                        continue
                    result = self._results[block_hash]
                    block = replace(result.block, certificate=encode_certificate(certificate))
                    self._commit(block, [tx.sender for tx in block.transactions])
                case PeerBehind(peer, height):
                    unasked = partial(self._send_blocks, peer, height, asked=False)
                    self._in_background(unasked, lambda: None)
                case Behind(peer, _):
                    self._ask_blocks(peer)

    def _in_background(
        self, work: Callable[[], Coroutine[Any, Any, object]], by_hand: Callable[..., object], *args: Any
    ) -> None:
        """Run `work()` as a task of the running loop; without one (a node driven by hand),
        `by_hand(*args)` at once instead."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            by_hand(*args)
            return
        task = loop.create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _judge(self, action: ValidateBlock, verdict: ProposalVerdict | None) -> None:
        """Queue the executor's verdict on a proposal for the state machine (None: a block
        this node built or validated already)."""
        if verdict is not None and verdict.result is None:
            self.counters["refused_proposals"] += 1
            log.warning("proposal 0x%s refused: %s", action.block_hash.hex(), verdict.reason)
        elif verdict is not None and verdict.result is not None:
            self._results[action.block_hash] = verdict.result
        valid = verdict is None or verdict.result is not None
        self._events.append(BlockValidated(action.height, action.block_hash, action.block, valid))

    def _known(self, action: ValidateBlock) -> bool:
        known = self._results.get(action.block_hash)
        return known is not None and known.payload == action.block

    def _validate_now(self, action: ValidateBlock) -> None:
        verdict = (
            None if self._known(action) else self._executor.validate_proposal(action.block, action.block_hash)
        )
        self._judge(action, verdict)

    async def _validate_off_loop(self, instance: QbftInstance, action: ValidateBlock) -> None:
        """Execute a proposal on a worker thread, so that the node answers requests meanwhile."""
        verdict = None
        if not self._known(action):
            verdict = await self._executing(self._executor.validate_proposal, action.block, action.block_hash)
        if self._instance is instance and instance.height == action.height:
            self._judge(action, verdict)
            self._drain()

    # -- timers -------------------------------------------------------------------------------

    def _start_timer(self, action: StartTimer) -> None:
        self._cancel_timers()
        if len(self._validators) <= 1:  # alone: no one to wait for, and a new round changes nothing
            return
        if action.round == 0 and not self._something_to_decide():
            self._idle_timer = action
        else:
            self._arm(action)

    def _arm(self, action: StartTimer) -> None:
        """Run the round's timer; the round-0 proposer proposes, even an empty block, by half
        of it, so that validators waiting for it do not change rounds."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven by hand (tools, tests): no timers
            return
        self._timer = loop.call_later(action.duration, self._expire, action)
        if self._build is not None and self._build.round == 0:
            self._empty_build = loop.call_later(
                action.duration / 2,
                self._in_background,
                lambda: self._build_off_loop(True),
                self._build_now,
                True,
            )

    def _expire(self, action: StartTimer) -> None:
        """The round's time is up, unless this node is still executing a block: then it waits
        for that first (a block that takes longer than a round to execute on a busy machine
        must not make every validator give up the round)."""
        if self._executing_now:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(action.duration / 4, 0.05), self._expire, action)
            return
        self._feed(TimerExpired(action.height, action.round))

    async def _executing(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)`, counted as execution in progress (`_expire`): on a worker thread
        when other validators are there to answer meanwhile, or when the executor runs in
        another process (the event loop then goes on admitting transactions while it waits:
        the two processes run on two cores); alone with the executor in this process, at
        once (measured faster: the node's admissions would contend with the execution for
        this one interpreter, and nothing waits for this node's answers but its own clients)."""
        self._executing_now += 1
        started = time.monotonic()
        try:
            if len(self._validators) <= 1 and not self._execute_apart:
                return work(*args)
            return await asyncio.to_thread(work, *args)
        finally:
            self._executing_now -= 1
            self._last_execution = time.monotonic() - started

    def _cancel_timers(self) -> None:
        for handle in (self._timer, self._empty_build):
            if handle is not None:
                handle.cancel()
        self._timer = self._empty_build = None
        self._idle_timer = None

    def _something_to_decide(self) -> bool:
        if self._block_time is not None:
            return True
        if not len(self._pool):
            return False
        return bool(self._ready_batch())

    def _activity(self) -> None:
        """Something to decide arrived: run the round timer held back, if any."""
        held, self._idle_timer = self._idle_timer, None
        if held is not None:
            self._arm(held)

    # -- building ------------------------------------------------------------------------------

    def _start(self) -> None:
        """Make the state machine of the next height, once."""
        if not self._started:
            self._started = True
            self._read_head()
            self._follow_validators(restart=True)

    def notify(self) -> None:
        """A transaction was admitted: build soon (unless blocks are timed)."""
        self._start()
        self._activity()
        self._wake.set()

    def _nonces_of(self, senders: Sequence[Address]) -> Callable[[Address], int]:
        """The latest nonces of `senders`, asked of the executor in one call."""
        return dict(zip(senders, self._executor.account_nonces(senders), strict=True)).__getitem__

    def _ready_batch(self) -> list[DecodedTransaction]:
        return self._pool.ready(self._nonces_of(self._pool.senders()), self._executor.next_base_fee())

    def _timestamp(self) -> int:
        """The next block's time: the clock plus the offset, or `next_timestamp` once set,
        from which later blocks then go on (the offset moves to it, as on Hardhat; never
        behind the clock)."""
        now = int(self._clock())
        if self.next_timestamp is not None:
            timestamp, self.next_timestamp = self.next_timestamp, None
            self.time_offset = max(timestamp - now, 0)
            return timestamp
        return now + self.time_offset

    def seal(self, *, allow_empty: bool = False) -> BlockRecord | None:
        """Build this node's proposal of the ready transactions, if it is the proposer the
        state machine waits for; the block if it was decided at once (one validator), else
        None (nothing to build, or the others decide later)."""
        return self._build_now(allow_empty)

    def _batch_to_build(self, allow_empty: bool) -> tuple[BuildBlock, list[DecodedTransaction]] | None:
        """The block asked for and the transactions for it, if there is one to build now.

        With other validators, a proposal holds at most what this node executes in half a
        round (by the time its last execution took a transaction): they execute it too, and
        a block they cannot check within their round makes them change rounds instead."""
        self._start()
        request, instance = self._build, self._instance
        if request is None or instance is None or request.height != instance.height:
            return None
        batch = self._ready_batch()
        if len(self._validators) > 1 and self._seconds_per_transaction > 0:
            fits = int(self._config.base_timeout / 2 / self._seconds_per_transaction)
            batch = batch[: max(fits, MIN_PROPOSAL)]
        return (request, batch) if batch or allow_empty else None

    def _build_now(self, allow_empty: bool) -> BlockRecord | None:
        asked = self._batch_to_build(allow_empty)
        if asked is None:
            return None
        return self._propose(self._executor.execute(asked[1], self._timestamp()))

    async def _build_off_loop(self, allow_empty: bool) -> BlockRecord | None:
        """`_build_now` with the execution on a worker thread: the node answers requests
        meanwhile. A block decided, or built by hand, in the meantime makes this one moot.

        With other validators, a block's time is at least a second after its parent's, as
        Ethereum requires, and at most `TIME_LEAD` seconds ahead of the clock (the others
        refuse a block far ahead of theirs): under load blocks come once a second, and the
        proposer waits for the next second if need be."""
        if self._building:
            return None
        self._building = True
        try:
            wait = self._head_timestamp + 1 - TIME_LEAD - self._clock()
            if len(self._validators) > 1 and wait > 0:
                await asyncio.sleep(wait)
            asked = self._batch_to_build(allow_empty)
            if asked is None:
                return None
            request, batch = asked
            result = await self._executing(self._executor.execute, batch, self._timestamp())
            if len(batch) >= MIN_PROPOSAL:
                self._seconds_per_transaction = self._last_execution / len(batch)
        finally:
            self._building = False
        return self._propose(result) if self._build is request else None

    def seal_made(self, make: Callable[[int], ExecutionResult], touched: Sequence[Address]) -> BlockRecord:
        """Propose the block `make(timestamp)` returns instead of a batch of the pool (a dev
        chain's state patch): decided at once by a single validator; waiting transactions
        of `touched` accounts whose nonce is used are dropped."""
        self._start()
        if self._build is None or len(self._validators) != 1:
            raise InvalidRequest("a state patch needs a chain of one validator (a dev chain)")
        block = self._propose(make(self._timestamp()), touched)
        assert block is not None, "one validator decides its own proposal at once"
        return block

    def reopen(self, make: Callable[[int], ExecutionResult]) -> BlockRecord:
        """Commit the reopening block `make(timestamp)` returns (`governance.reopening`),
        which must install this node alone: its commit seal is the block's certificate, and
        it orders the blocks after it (others join by governance, as validators always do)."""
        if self._signer.address in self._validators:
            raise InvalidRequest("this node is a validator already: the network is open")
        result = make(self._timestamp())
        if result.installs != (self._signer.address,):
            raise InvalidRequest("a reopening must name this node, and only it, as the validator")
        block_hash, signer = result.block.hash, self._signer
        seal = make_seal(signer, block_hash, 0)
        certificate = certificate_of([sign(Commit(signer.address, self.height, 0, block_hash, seal), signer)])
        block = self._commit(replace(result.block, certificate=encode_certificate(certificate)), ())
        log.info("reopened at block %d: this node orders the blocks", block.number)
        return block

    def _propose(self, result: ExecutionResult, touched: Sequence[Address] = ()) -> BlockRecord | None:
        request = self._build
        assert request is not None
        self._build = None
        if self._empty_build is not None:
            self._empty_build.cancel()
            self._empty_build = None
        for decoded, reason in result.dropped:
            log.info("dropped transaction %s: %s", decoded.hash.hex(), reason)
        self._pool.remove(decoded.hash for decoded, _ in result.dropped)
        self._touched = [*touched, *(decoded.sender for decoded, _ in result.dropped)]
        self._activity()
        block = result.block
        self._results[block.hash] = result
        self._feed(BlockBuilt(request.height, block.hash, result.payload))
        committed = self._last_committed
        return committed if committed is not None and committed.hash == block.hash else None

    # -- committing ------------------------------------------------------------------------------

    def _commit(self, block: BlockRecord, touched: Sequence[Address]) -> BlockRecord:
        self._last_sealed = time.monotonic()
        self._store.append_block(block)
        self._head_number, self._head_timestamp = block.number, block.timestamp
        self._executor.committed(block)
        self._results.clear()
        self._pool.remove(tx.hash for tx in block.transactions)
        senders = list(dict.fromkeys([*touched, *self._touched]))
        self._touched = []
        self._pool.prune_stale(senders, self._nonces_of(senders))
        self._last_committed = block
        self._on_block(block)
        if self._follow_validators():
            log.info("validators from block %d: %s", block.number + 1, [v.hex() for v in self.validators])
        if len(self._pool):
            self._wake.set()
        return block

    # -- catching up -----------------------------------------------------------------------------

    def _decided_from(self, first: int) -> list[DecidedBlock]:
        """The decided blocks from `first` on, as many as one answer holds (the enclave makes
        each proposal again from storage: run off the event loop)."""
        blocks: list[DecidedBlock] = []
        size = 0
        for number in range(max(first, 1), min(self.height - 1, first + MAX_SYNC_BLOCKS - 1) + 1):
            stored, certificate = self._store.block_by_number(number), self._store.certificate(number)
            if stored is None or certificate is None:
                break
            proposal = self._executor.block_payload(number)
            blocks.append(DecidedBlock(number, stored.hash, proposal, decode_certificate(certificate)))
            size += len(proposal)
            if size >= MAX_SYNC_BYTES:
                break
        return blocks

    async def _send_blocks(self, peer: Address, first: int, *, asked: bool = True) -> None:
        """Send `peer` the decided blocks from `first` on, once per `SYNC_ANSWER_SECONDS`."""
        if self._network is None or first >= self.height:
            return
        due = self._answered.get(peer, -SYNC_ANSWER_SECONDS) + SYNC_ANSWER_SECONDS
        if time.monotonic() < due:
            self.counters["sync_answers_paced"] += 1
            if not asked:
                return
            while (wait := due - time.monotonic()) > 0:  # a timer may fire a little early
                await asyncio.sleep(wait)
        self._answered[peer] = time.monotonic()  # taken: a request meanwhile waits
        blocks = await asyncio.to_thread(self._decided_from, first)
        if blocks:
            self._answered[peer] = time.monotonic()  # paced from when it goes out
            self._network.send(peer, encode_sync_blocks(blocks))

    def _ask_blocks(self, peer: Address | None = None) -> None:
        if self._network is None:
            return
        request = encode_sync_request(self.height)
        if peer is None:
            self._network.broadcast(request)
        else:
            self._network.send(peer, request)

    async def _apply_decided(self, peer: Address, blocks: list[DecidedBlock]) -> None:
        """Commit the blocks a peer sent that follow the head, while each checks out; each
        executes on a worker thread (the node answers requests meanwhile)."""
        applied = 0
        for decided in blocks:
            if decided.height != self.height:
                if decided.height > self.height:
                    break
                continue
            # A block's certificate is a quorum of the head's validators, but a reopening
            # block's is of those it installs (the lost ones could certify nothing), which
            # only its execution tells: so the certificate is checked after it.
            validate = self._executor.validate_proposal
            verdict = await self._executing(validate, decided.proposal, decided.block_hash)
            if decided.height != self.height:  # decided meanwhile, by consensus or another peer
                continue
            if verdict.result is None:
                self.counters["refused_sync_blocks"] += 1
                log.warning("block %d from 0x%s refused: %s", decided.height, peer.hex(), verdict.reason)
                return
            certifiers = verdict.result.installs or tuple(self._validators)
            if not verify_certificate(decided.block_hash, decided.certificate, certifiers):
                self.counters["refused_sync_blocks"] += 1
                log.warning("block %d from 0x%s: its certificate is not a quorum", decided.height, peer.hex())
                return
            certificate = encode_certificate(decided.certificate)
            self._commit(replace(verdict.result.block, certificate=certificate), ())
            self._follow_validators(restart=True)  # what the state machine was deciding is decided
            applied += 1
            self.counters["synced_blocks"] += 1
        if applied and len(blocks) == MAX_SYNC_BLOCKS:
            self._ask_blocks(peer)

    # -- the network -----------------------------------------------------------------------------

    def forward(self, data: bytes) -> None:
        """Send an admitted transaction (the enclave's `forward` bytes) to the other validators."""
        if self._network is not None:
            self._network.broadcast(tagged(Channel.TRANSACTION, data))

    def on_message(self, sender: Address, payload: bytes) -> Awaitable[None] | None:
        """A payload from another validator (the transport authenticated `sender`); the
        transport reads no more from that validator until an awaitable returned is done."""
        self._start()
        try:
            channel, body = channel_of(payload)
            match channel:
                case Channel.CONSENSUS:
                    if self._instance is not None:
                        if decode(body).height == self._instance.height:  # not a late vote
                            self._activity()
                        self._feed(MessageReceived(body))
                case Channel.TRANSACTION:
                    self._on_transaction(body)
                case Channel.SYNC_REQUEST:
                    return self._send_blocks(sender, decode_sync_request(body))
                case Channel.SYNC_BLOCKS:
                    return self._apply_decided(sender, decode_sync_blocks(body))
        except MalformedMessage as refused:
            self.counters["malformed_payloads"] += 1
            log.debug("payload from 0x%s refused: %s", sender.hex(), refused)

    # -- running ---------------------------------------------------------------------------------

    async def _gather(self) -> None:
        """Wait while transactions keep arriving, or an admission call is in flight, up to
        `MAX_GATHER_SECONDS`.

        A lone transaction is sealed after one quiet tick; a stream of them is gathered
        into one block, so the per-block costs (state root, commit) are shared.
        """
        deadline = time.monotonic() + MAX_GATHER_SECONDS
        seen = len(self._pool)
        while time.monotonic() < deadline:
            await asyncio.sleep(GATHER_TICK_SECONDS)
            if len(self._pool) == seen and not self._admissions_pending():
                return
            seen = len(self._pool)

    async def _keep_in_sync(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            self._ask_blocks()

    async def run(self) -> None:
        """Order blocks until cancelled.

        With the executor in another process (`execute_apart`), the next block is gathered
        after each one too (`_gather`: until the pool is quiet for a tick and no admission
        call is in flight, at most `MAX_GATHER_SECONDS`), not built at once with whatever
        arrived meanwhile. The enclave admits on one interpreter while it executes, so a
        block built at once holds what slipped in between, costs the enclave more per
        transaction (each block loads its accounts afresh), and leaves the next one smaller
        still: with a fast keccak, blocks of ~12 transactions at ~210 tx/s, against ~65 at
        ~300 tx/s gathered. A lone transaction waits no longer: it is gathered on the wake,
        as before, and nothing is in flight after it."""
        self._start()
        sync = asyncio.create_task(self._keep_in_sync()) if self._network is not None else None
        try:
            while True:
                if self._block_time is None:
                    await self._wake.wait()
                    await self._gather()
                    self._wake.clear()
                    while True:
                        wait = self._last_sealed + self.min_interval - time.monotonic()
                        if wait > 0:  # the network's block time has not passed since the last block
                            await asyncio.sleep(wait)
                        if await self._build_off_loop(allow_empty=False) is None:
                            break
                        if self._execute_apart:
                            await self._gather()
                else:
                    await asyncio.sleep(self._block_time)
                    await self._build_off_loop(allow_empty=True)
        finally:
            if sync is not None:
                sync.cancel()
            for task in list(self._tasks):
                task.cancel()
            self._cancel_timers()

    def status(self) -> dict[str, object]:
        """The state of consensus, as operators see it."""
        self._start()
        instance = self._instance
        return {
            "height": self.height,
            "round": None if instance is None else instance.round,
            "proposer": None if instance is None else instance.proposer(instance.height, instance.round),
            "validators": self.validators,
            "quorum": quorum(len(self._validators)) if self._validators else 0,
            "isValidator": instance is not None,
            "dropped": dict(instance.counters) if instance is not None else {},
            "equivocations": len(instance.evidence) if instance is not None else 0,
            **self.counters,
        }
