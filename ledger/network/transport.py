"""The node-to-node transport: authenticated TCP connections between validators.

`Transport` keeps one connection to each other validator of the current set and moves
opaque payloads over it (consensus messages, transactions forwarded to the proposer,
later block fetches). `docs/consensus.md` ("Transport") gives the design; in short:

- **Authentication** (`handshake`): each end signs a digest of both ends' fresh
  challenges, the chain id and both addresses with its node key; the dialer accepts only
  the validator it dialled, the acceptor only a member of the current validator set.
  Both challenges carry ephemeral X25519 keys: the frames that follow are sealed
  (AES-256-GCM, one key per direction, sequence-numbered) under keys derived from them.
- **One connection per pair**: both ends dial; when two connections to one peer are up,
  the one dialled by the lower address stays (`keeps_existing`), on both ends alike. The
  other is handed over without loss: each end stops writing to it, sends GOODBYE as its
  last frame, and reads it up to the peer's GOODBYE (within `handover_timeout`); what
  arrives on the kept one waits until then, so a peer's frames arrive in order.
- **Reconnects**: a per-peer dial loop, capped exponential back-off with jitter
  (`backoff_delay`); an idle connection is pinged, and one silent for `idle_timeout` is
  closed.
- **Back-pressure**: `send` never waits. Each peer has a bounded queue (frames and
  bytes); when full the *oldest* frame is dropped and counted (consensus re-sends on its
  round timers, and a newer message supersedes an older one). The reader awaits the
  consumer before it reads the next frame, so a slow consumer slows its senders, whose
  queues for it then drop, without holding up anyone else.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from evm_runtime.types import Address

from . import frames
from .errors import FrameRefused, HandshakeRefused, PayloadTooLarge
from .frames import FrameOpener, FrameSealer, Kind
from .handshake import MAX_MESSAGE, NOT_VALIDATOR, AcceptorHandshake, DialerHandshake
from .interfaces import Endpoint, MessageHandler, Signer

log = logging.getLogger(__name__)

# Why a connection was refused, besides the handshake's own reasons (`handshake`).
TIMEOUT = "timeout"
CLOSED = "closed"
BUSY = "busy"
DUPLICATE = "duplicate"

READ_CHUNK = 1024 * 1024
WRITE_BATCH_BYTES = 256 * 1024
"""The writer hands the socket this much before it waits for it to drain."""


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Limits and timings (seconds). The defaults suit validators on a WAN."""

    max_payload: int = frames.DEFAULT_MAX_PAYLOAD
    """The largest payload a frame carries; larger ones are refused by `send` and on receipt."""
    queue_frames: int = 1024
    """Frames waiting for one peer, at most (then the oldest is dropped)."""
    queue_bytes: int = 64 * 1024 * 1024
    """Payload bytes waiting for one peer, at most (then the oldest are dropped)."""
    connect_timeout: float = 3.0
    handshake_timeout: float = 5.0
    heartbeat_interval: float = 2.0
    """A connection on which nothing was sent for this long gets a PING."""
    idle_timeout: float = 10.0
    """A connection on which nothing arrived for this long is closed."""
    backoff_base: float = 0.05
    backoff_max: float = 5.0
    handover_timeout: float = 5.0
    """A connection given up for another waits this long for the peer's GOODBYE, at most."""
    stable_after: float = 5.0
    """A connection that lasted less than this counts as a failure for the back-off."""
    max_pending_handshakes: int = 64
    """Unauthenticated connections at once, at most; more are closed at once."""

    def __post_init__(self) -> None:
        frames.max_body(self.max_payload)  # raises if a frame cannot carry it
        timeouts = (
            self.connect_timeout,
            self.handshake_timeout,
            self.heartbeat_interval,
            self.handover_timeout,
        )
        if min(timeouts) <= 0 or self.stable_after < 0 or self.max_pending_handshakes < 1:
            raise ValueError("timeouts must be positive, and one handshake at least allowed")
        if self.queue_frames < 1 or self.queue_bytes < self.max_payload:
            raise ValueError("a queue must hold at least one frame of max_payload bytes")
        if self.idle_timeout <= self.heartbeat_interval:
            raise ValueError("idle_timeout must exceed heartbeat_interval")
        if not 0 < self.backoff_base <= self.backoff_max:
            raise ValueError("0 < backoff_base <= backoff_max")


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """How long to wait before dialling again after `failures` failures in a row.

    min(cap, base · 2^failures), times a random factor in [0.5, 1) ("equal jitter"): the
    delay grows to the cap, and peers that lost each other at once do not redial in step.
    """
    ceiling = min(cap, base * 2 ** min(failures, 64))
    return ceiling * (0.5 + rand() / 2)


def keeps_existing(own: Address, peer: Address, existing_dialer: Address, new_dialer: Address) -> bool:
    """Of two authenticated connections between `own` and `peer`, whether the one kept stays.

    The one dialled by the lower address wins, so both ends keep the same one whatever
    order they saw them in. Two dialled by the same end: the newer wins (the older is
    what is left of a connection that end gave up on, as after a restart).
    """
    if existing_dialer == new_dialer:
        return False
    return existing_dialer == min(own, peer)


@dataclass(frozen=True, slots=True)
class PeerStats:
    """One peer, as `Transport.stats` saw it."""

    endpoint: Endpoint
    connected: bool
    dialled_by: Address | None
    """Who dialled the current connection (None: not connected)."""
    retiring: int
    """Connections given up for the current one, still read up to the peer's GOODBYE."""
    frames_sent: int
    """DATA frames written to a connection (one that then breaks may lose the last ones)."""
    frames_received: int
    """DATA frames received and handed to the consumer."""
    frames_dropped: int
    """Frames dropped from the full queue (the oldest first)."""
    frames_refused: int
    """Frames refused on receipt (too long, out of sequence, not authentic): each closed
    its connection."""
    bytes_sent: int
    bytes_received: int
    queued_frames: int
    queued_bytes: int
    connects: int
    disconnects: int
    dial_failures: int
    refusals: Mapping[str, int]
    """`frames_refused` by reason (`frames.OVERSIZED`, `frames.BAD_TAG`, …)."""


@dataclass(frozen=True, slots=True)
class TransportStats:
    peers: Mapping[Address, PeerStats]
    connected: frozenset[Address]
    refused: Mapping[str, int]
    """Connections refused, by reason (`handshake.NOT_VALIDATOR`, `handshake.BAD_SIGNATURE`,
    `TIMEOUT`, …), as acceptor or dialer."""
    duplicates: int
    """Connections closed because another one to the same peer was kept."""
    handler_errors: int
    """Exceptions the consumer raised (logged; the connection goes on)."""


@dataclass(slots=True)
class _Counters:
    frames_sent: int = 0
    frames_received: int = 0
    frames_dropped: int = 0
    frames_refused: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    connects: int = 0
    disconnects: int = 0
    dial_failures: int = 0
    refusals: Counter[str] = field(default_factory=Counter)


class _Link:
    """One authenticated connection to a peer, with its sealing state and its two tasks."""

    def __init__(
        self,
        peer: Address,
        dialer: Address,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sealer: FrameSealer,
        opener: FrameOpener,
    ) -> None:
        self.peer = peer
        self.dialer = dialer
        self.reader = reader
        self.writer = writer
        self.sealer = sealer
        self.opener = opener
        self.reader_task: asyncio.Task[None] | None = None
        self.writer_task: asyncio.Task[None] | None = None
        self.since = 0.0
        self.retiring = False
        """Given up for another connection: no more writing; read up to the peer's GOODBYE."""
        self.goodbye_received = False
        self.closed = False


class _Peer:
    """Another validator: where it listens, what waits for it, and the connection to it."""

    def __init__(self, address: Address, endpoint: Endpoint) -> None:
        self.address = address
        self.endpoint = endpoint
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.wake = asyncio.Event()
        self.down = asyncio.Event()
        self.down.set()
        self.link: _Link | None = None
        self.retiring: set[_Link] = set()
        self.handed_over = asyncio.Event()
        """Set while no connection to this peer is retiring (`link` may deliver)."""
        self.handed_over.set()
        self.failures = 0
        self.dial_task: asyncio.Task[None] | None = None
        self.counters = _Counters()


class Transport:
    """Authenticated, bounded, self-healing connections to the other validators.

    `endpoints` is the validator set with where each listens; this node's own entry, if
    there, is where it listens unless `listen` says otherwise (port 0: any free port, see
    `listen_address`). `on_message(sender, payload)` is called for each payload received.
    """

    def __init__(
        self,
        own_address: Address,
        signer: Signer,
        endpoints: Mapping[Address, Endpoint],
        on_message: MessageHandler,
        *,
        chain_id: int,
        listen: Endpoint | None = None,
        config: TransportConfig | None = None,
    ) -> None:
        if signer.address != own_address:
            raise ValueError("the signer's key is not the node's address")
        listen = listen if listen is not None else endpoints.get(own_address)
        if listen is None:
            raise ValueError("where to listen: give `listen`, or this node's entry in `endpoints`")
        self._own = own_address
        self._signer = signer
        self._on_message = on_message
        self._chain_id = chain_id
        self._listen = listen
        self._config = config or TransportConfig()
        self._max_body = frames.max_body(self._config.max_payload)
        self._peers: dict[Address, _Peer] = {}
        self._server: asyncio.Server | None = None
        self._running = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_handshakes = 0
        self._refused: Counter[str] = Counter()
        self._duplicates = 0
        self._handler_errors = 0
        self.update_peers(endpoints)

    # ------------------------------------------------------------------------------------
    # Life cycle
    # ------------------------------------------------------------------------------------

    @property
    def own_address(self) -> Address:
        return self._own

    @property
    def listen_address(self) -> Endpoint:
        """Where the transport listens (once started: the port chosen, if asked for port 0;
        a later `start` listens there again)."""
        return self._listen

    async def start(self) -> None:
        """Listen, and dial every peer (each until it answers, backing off)."""
        if self._running:
            return
        host, port = self._listen
        self._server = await asyncio.start_server(self._accept, host, port)
        bound = self._server.sockets[0].getsockname()
        self._listen = (str(bound[0]), int(bound[1]))
        self._running = True
        for peer in self._peers.values():
            self._start_dialling(peer)
        log.info("transport of 0x%s listening on %s:%d", self._own.hex(), *self.listen_address)

    async def stop(self) -> None:
        """Stop listening, close every connection; what still waits in the queues is dropped."""
        self._running = False
        if self._server is not None:
            self._server.close()
        links = [
            link for peer in self._peers.values() for link in (peer.link, *peer.retiring) if link is not None
        ]
        for link in links:
            self._drop_link(link)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in links:
            await _closed(link.writer)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        for peer in self._peers.values():
            peer.dial_task = None
            peer.queue.clear()
            peer.queued_bytes = 0

    # ------------------------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------------------------

    def send(self, peer: Address, payload: bytes) -> bool:
        """Queue `payload` for `peer` (never waits); False if `peer` is not a validator.

        A full queue drops its oldest frame (counted in `frames_dropped`). Raises
        `PayloadTooLarge` above `max_payload`. This node's own address is not a peer.
        """
        payload = bytes(payload)
        if len(payload) > self._config.max_payload:
            raise PayloadTooLarge(f"{len(payload)} bytes, at most {self._config.max_payload}")
        target = self._peers.get(peer)
        if target is None:
            return False
        self._enqueue(target, payload)
        return True

    def broadcast(self, payload: bytes) -> int:
        """Queue `payload` for every other validator; how many it was queued for."""
        payload = bytes(payload)
        if len(payload) > self._config.max_payload:
            raise PayloadTooLarge(f"{len(payload)} bytes, at most {self._config.max_payload}")
        for peer in self._peers.values():
            self._enqueue(peer, payload)
        return len(self._peers)

    def _enqueue(self, peer: _Peer, payload: bytes) -> None:
        peer.queue.append(payload)
        peer.queued_bytes += len(payload)
        limits = self._config
        while len(peer.queue) > limits.queue_frames or peer.queued_bytes > limits.queue_bytes:
            dropped = peer.queue.popleft()
            peer.queued_bytes -= len(dropped)
            peer.counters.frames_dropped += 1
        peer.wake.set()

    # ------------------------------------------------------------------------------------
    # The validator set
    # ------------------------------------------------------------------------------------

    def update_peers(self, endpoints: Mapping[Address, Endpoint]) -> None:
        """Make `endpoints` the validator set: dial new peers, drop removed ones.

        A removed peer's connection is closed and its queue dropped; it is refused from
        then on. A peer whose endpoint changed is dialled there the next time it is
        dialled (a working connection is kept).
        """
        wanted = {
            Address(bytes(address)): (str(host), int(port)) for address, (host, port) in endpoints.items()
        }
        wanted.pop(self._own, None)
        for address in [address for address in self._peers if address not in wanted]:
            peer = self._peers.pop(address)
            if peer.dial_task is not None:
                peer.dial_task.cancel()
            for link in (peer.link, *peer.retiring):
                if link is not None:
                    self._drop_link(link)
            log.info("0x%s left the validator set", address.hex())
        for address, endpoint in wanted.items():
            known = self._peers.get(address)
            if known is not None:
                known.endpoint = endpoint
                continue
            peer = self._peers[address] = _Peer(address, endpoint)
            if self._running:
                self._start_dialling(peer)

    def _is_validator(self, address: Address) -> bool:
        return address in self._peers

    # ------------------------------------------------------------------------------------
    # Statistics
    # ------------------------------------------------------------------------------------

    @property
    def connected_peers(self) -> frozenset[Address]:
        return frozenset(address for address, peer in self._peers.items() if peer.link is not None)

    def stats(self) -> TransportStats:
        peers = {
            address: PeerStats(
                endpoint=peer.endpoint,
                connected=peer.link is not None,
                dialled_by=peer.link.dialer if peer.link is not None else None,
                retiring=len(peer.retiring),
                frames_sent=peer.counters.frames_sent,
                frames_received=peer.counters.frames_received,
                frames_dropped=peer.counters.frames_dropped,
                frames_refused=peer.counters.frames_refused,
                bytes_sent=peer.counters.bytes_sent,
                bytes_received=peer.counters.bytes_received,
                queued_frames=len(peer.queue),
                queued_bytes=peer.queued_bytes,
                connects=peer.counters.connects,
                disconnects=peer.counters.disconnects,
                dial_failures=peer.counters.dial_failures,
                refusals=dict(peer.counters.refusals),
            )
            for address, peer in self._peers.items()
        }
        return TransportStats(
            peers=peers,
            connected=self.connected_peers,
            refused=dict(self._refused),
            duplicates=self._duplicates,
            handler_errors=self._handler_errors,
        )

    # ------------------------------------------------------------------------------------
    # Connecting: accepting and dialling
    # ------------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("transport task %s failed", task.get_name(), exc_info=task.exception())

    def _refuse(self, reason: str, remote: object, detail: object) -> None:
        self._refused[reason] += 1
        log.warning(
            "transport of 0x%s refused a connection (%s) with %s: %s", self._own.hex(), reason, remote, detail
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        remote = writer.get_extra_info("peername")
        if not self._running or self._pending_handshakes >= self._config.max_pending_handshakes:
            self._refuse(BUSY, remote, "too many handshakes at once")
            writer.transport.abort()
            return
        handshake = AcceptorHandshake(self._signer, self._chain_id, self._is_validator)
        registered = False
        try:
            self._pending_handshakes += 1
            try:
                async with asyncio.timeout(self._config.handshake_timeout):
                    reply = handshake.on_hello(await _read_plain(reader))
                    writer.write(frames.encode_plain(reply))
                    await writer.drain()
                    dialer, keys = handshake.on_auth(await _read_plain(reader))
            finally:
                self._pending_handshakes -= 1
            sealer, opener = FrameSealer(keys.acceptor_to_dialer), FrameOpener(keys.dialer_to_acceptor)
            registered = self._register(_Link(dialer, dialer, reader, writer, sealer, opener), acceptor=True)
        except (HandshakeRefused, FrameRefused) as error:
            self._refuse(error.reason, remote, error)
        except TimeoutError:
            self._refuse(TIMEOUT, remote, "the handshake took too long")
        except (asyncio.IncompleteReadError, OSError) as error:
            self._refuse(CLOSED, remote, repr(error))
        finally:
            if not registered:
                writer.transport.abort()

    def _start_dialling(self, peer: _Peer) -> None:
        if peer.dial_task is None or peer.dial_task.done():
            peer.dial_task = self._spawn(self._dial_loop(peer), f"dial 0x{peer.address.hex()}")

    async def _dial_loop(self, peer: _Peer) -> None:
        config = self._config
        while self._running and self._peers.get(peer.address) is peer:
            await peer.down.wait()
            await asyncio.sleep(backoff_delay(peer.failures, config.backoff_base, config.backoff_max))
            if peer.link is not None or self._peers.get(peer.address) is not peer:
                continue
            try:
                link = await self._dial(peer)
            except (HandshakeRefused, FrameRefused) as error:
                self._refuse(error.reason, peer.endpoint, error)
            except (TimeoutError, asyncio.IncompleteReadError, OSError) as error:
                log.debug("dialling 0x%s at %s failed: %r", peer.address.hex(), peer.endpoint, error)
            else:
                if not self._register(link, acceptor=False):
                    link.writer.transport.abort()
                continue
            peer.failures += 1
            peer.counters.dial_failures += 1

    async def _dial(self, peer: _Peer) -> _Link:
        host, port = peer.endpoint
        config = self._config
        async with asyncio.timeout(config.connect_timeout):
            reader, writer = await asyncio.open_connection(host, port)
        try:
            async with asyncio.timeout(config.handshake_timeout):
                handshake = DialerHandshake(self._signer, self._chain_id, peer.address)
                writer.write(frames.encode_plain(handshake.hello()))
                auth, keys = handshake.on_reply(await _read_plain(reader))
                writer.write(frames.encode_plain(auth))
                await writer.drain()
                opener = FrameOpener(keys.acceptor_to_dialer)
                kind, _ = opener.open(await _read_body(reader, frames.OVERHEAD, config.handshake_timeout))
                if kind is not Kind.WELCOME:
                    raise FrameRefused(frames.MALFORMED, f"{kind.name} before WELCOME")
        except BaseException:
            writer.transport.abort()
            raise
        return _Link(peer.address, self._own, reader, writer, FrameSealer(keys.dialer_to_acceptor), opener)

    def _register(self, link: _Link, *, acceptor: bool) -> bool:
        """Make `link` the connection to its peer, unless the one there already stays.

        False: the caller closes `link` at once (nothing was sent on it). The acceptor
        decides before its WELCOME, so then neither end has sent anything; a dialer that
        keeps its other connection retires this one instead (the acceptor may have sent
        frames on it already) and answers True.
        """
        if not self._running:
            return False
        peer = self._peers.get(link.peer)
        if peer is None:
            self._refuse(NOT_VALIDATOR, link.writer.get_extra_info("peername"), "left the validator set")
            return False
        current = peer.link
        if current is not None:
            self._duplicates += 1
            if keeps_existing(self._own, peer.address, current.dialer, link.dialer):
                log.debug(
                    "kept the connection with 0x%s dialled by 0x%s", peer.address.hex(), current.dialer.hex()
                )
                if acceptor:
                    return False
                link.reader_task = self._spawn(self._read_loop(peer, link), f"read 0x{peer.address.hex()}")
                self._retire(peer, link)
                return True
            self._retire(peer, current)
        if acceptor:
            link.writer.write(link.sealer.seal(Kind.WELCOME, b""))
        link.since = asyncio.get_running_loop().time()
        peer.link = link
        peer.down.clear()
        peer.counters.connects += 1
        name = f"0x{peer.address.hex()}"
        link.reader_task = self._spawn(self._read_loop(peer, link), f"read {name}")
        link.writer_task = self._spawn(self._write_loop(peer, link), f"write {name}")
        log.info(
            "transport of 0x%s connected to %s (dialled by 0x%s)", self._own.hex(), name, link.dialer.hex()
        )
        return True

    def _retire(self, peer: _Peer, link: _Link) -> None:
        """Give `link` up for another connection: stop writing, say GOODBYE, read up to the
        peer's (then close it), or abort it after `handover_timeout`."""
        if link.retiring or link.closed:
            return
        link.retiring = True
        if peer.link is link:
            self._unset_current(peer, link)
        if link.writer_task is not None and link.writer_task is not asyncio.current_task():
            link.writer_task.cancel()  # it waits at an await: every frame it wrote is whole
        peer.retiring.add(link)
        peer.handed_over.clear()
        try:
            link.writer.write(link.sealer.seal(Kind.GOODBYE, b""))
        except (OSError, RuntimeError, FrameRefused):
            self._drop_link(link)
            return
        if link.goodbye_received:
            self._finish(link)
        else:
            asyncio.get_running_loop().call_later(self._config.handover_timeout, self._drop_link, link)

    def _finish(self, link: _Link) -> None:
        """Both GOODBYEs are through: close gracefully (what is buffered, ours included, goes out)."""
        link.closed = True
        link.writer.close()
        asyncio.get_running_loop().call_later(self._config.handover_timeout, link.writer.transport.abort)
        self._forget_retiring(link)

    def _forget_retiring(self, link: _Link) -> None:
        peer = self._peers.get(link.peer)
        if peer is not None and link in peer.retiring:
            peer.retiring.discard(link)
            if not peer.retiring:
                peer.handed_over.set()

    def _unset_current(self, peer: _Peer, link: _Link) -> None:
        peer.link = None
        peer.down.set()
        peer.counters.disconnects += 1
        lasted = asyncio.get_running_loop().time() - link.since
        peer.failures = 0 if lasted >= self._config.stable_after else peer.failures + 1

    def _drop_link(self, link: _Link) -> None:
        """Close `link` at once (lost, refused, or no GOODBYE in time). Its writer stops;
        its reader ends at the end of the stream, after handing over the payload it holds,
        if any (a consumer is never cancelled)."""
        if link.closed:
            return
        link.closed = True
        link.writer.transport.abort()  # close() would wait, forever, for a peer that stopped reading
        if link.writer_task is not None and link.writer_task is not asyncio.current_task():
            link.writer_task.cancel()
        self._forget_retiring(link)
        peer = self._peers.get(link.peer)
        if peer is not None and peer.link is link:
            self._unset_current(peer, link)
            log.info("transport of 0x%s lost 0x%s", self._own.hex(), link.peer.hex())

    # ------------------------------------------------------------------------------------
    # Moving frames
    # ------------------------------------------------------------------------------------

    async def _read_loop(self, peer: _Peer, link: _Link) -> None:
        counters = peer.counters
        try:
            while True:
                kind, payload = link.opener.open(
                    await _read_body(link.reader, self._max_body, self._config.idle_timeout)
                )
                if kind is Kind.DATA:
                    if not link.retiring and not peer.handed_over.is_set():
                        await self._handover(peer)
                    counters.frames_received += 1
                    counters.bytes_received += len(payload)
                    await self._deliver(peer.address, payload)
                elif kind is Kind.GOODBYE:
                    link.goodbye_received = True
                    if link.retiring:
                        self._finish(link)
                    else:  # the peer kept another connection: so do we, when it comes
                        self._retire(peer, link)
                    return
                elif kind is not Kind.PING:
                    raise FrameRefused(frames.MALFORMED, f"{kind.name} after the handshake")
        except FrameRefused as error:
            counters.frames_refused += 1
            counters.refusals[error.reason] += 1
            log.warning(
                "transport of 0x%s refused a frame from 0x%s: %s", self._own.hex(), peer.address.hex(), error
            )
        except TimeoutError:
            log.info("0x%s was silent for %ss", peer.address.hex(), self._config.idle_timeout)
        except (asyncio.IncompleteReadError, OSError) as error:
            log.debug("connection with 0x%s closed: %r", peer.address.hex(), error)
        finally:
            self._drop_link(link)

    async def _handover(self, peer: _Peer) -> None:
        """Wait until what the peer sent on retiring connections, sent first, is delivered."""
        try:
            async with asyncio.timeout(self._config.handover_timeout):
                await peer.handed_over.wait()
        except TimeoutError:
            pass  # each retiring connection is aborted at its own deadline anyway

    async def _deliver(self, sender: Address, payload: bytes) -> None:
        try:
            result = self._on_message(sender, payload)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # The consumer's failure is its own: log it, keep the connection.
            self._handler_errors += 1
            log.exception("the message handler failed on a payload from 0x%s", sender.hex())

    async def _write_loop(self, peer: _Peer, link: _Link) -> None:
        counters = peer.counters
        heartbeat = self._config.heartbeat_interval
        try:
            while not (link.retiring or link.closed):
                if not peer.queue:
                    peer.wake.clear()
                    try:
                        async with asyncio.timeout(heartbeat):
                            await peer.wake.wait()
                    except TimeoutError:
                        if link.retiring or link.closed:
                            return
                        link.writer.write(link.sealer.seal(Kind.PING, b""))
                        await link.writer.drain()
                    continue
                batch = 0
                while peer.queue and batch < WRITE_BATCH_BYTES:
                    payload = peer.queue.popleft()
                    peer.queued_bytes -= len(payload)
                    link.writer.write(link.sealer.seal(Kind.DATA, payload))
                    batch += len(payload)
                    counters.frames_sent += 1
                    counters.bytes_sent += len(payload)
                await link.writer.drain()
        except (OSError, FrameRefused) as error:
            log.debug("writing to 0x%s failed: %r", peer.address.hex(), error)
            self._drop_link(link)
        # Cancelled, or retiring: whoever did it takes care of the connection.


async def _read_plain(reader: asyncio.StreamReader) -> bytes:
    """One handshake message (the caller bounds the time)."""
    length = frames.frame_length(await reader.readexactly(frames.LENGTH_PREFIX), MAX_MESSAGE)
    return await reader.readexactly(length)


async def _read_body(reader: asyncio.StreamReader, max_length: int, idle_timeout: float) -> bytes:
    """One sealed frame's body: refused unread above `max_length`; `TimeoutError` when
    nothing arrives for `idle_timeout` (before the frame or in the middle of it)."""
    async with asyncio.timeout(idle_timeout):
        prefix = await reader.readexactly(frames.LENGTH_PREFIX)
    remaining = frames.frame_length(prefix, max_length)
    parts: list[bytes] = []
    while remaining:
        async with asyncio.timeout(idle_timeout):
            chunk = await reader.read(min(remaining, READ_CHUNK))
        if not chunk:
            raise asyncio.IncompleteReadError(b"".join(parts), None)
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


async def _closed(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
