"""Helpers for the transport tests: keys, nodes on loopback, a validator's end driven by
hand (`raw_dial`), and a TCP proxy that can tamper with, replay or hold back what it relays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from coincurve import PrivateKey
from eth_hash.auto import keccak

from evm_runtime.types import Address
from ledger.network import Endpoint, Transport, TransportConfig
from ledger.network.frames import FrameOpener, FrameSealer, Kind, encode_plain
from ledger.network.handshake import DialerHandshake
from ledger.signing import validator_digest

CHAIN_ID = 1337
LOOPBACK = "127.0.0.1"
T = TypeVar("T")

FAST = TransportConfig(
    connect_timeout=1.0,
    handshake_timeout=2.0,
    heartbeat_interval=0.5,
    idle_timeout=3.0,
    backoff_base=0.02,
    backoff_max=0.2,
    stable_after=0.5,
)
"""Timings for tests: reconnects within a fifth of a second."""


class KeySigner:
    """A node key as the enclave holds it (coincurve, recoverable, v in 0..1)."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self._address = Address(keccak(key.public_key.format(compressed=False)[1:])[12:])

    @classmethod
    def numbered(cls, number: int) -> KeySigner:
        return cls(PrivateKey(keccak(b"conclave/transport-test/key/%d" % number)))

    @property
    def address(self) -> Address:
        return self._address

    def sign_hash(self, message_hash: bytes) -> bytes:
        return self.key.sign_recoverable(validator_digest(message_hash), hasher=None)


class LyingSigner(KeySigner):
    """A host that claims a validator's address without holding its key."""

    def __init__(self, key: PrivateKey, claimed: Address) -> None:
        super().__init__(key)
        self._address = claimed


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coroutine

    return asyncio.run(bounded())


async def eventually(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Wait until `condition()` holds, polling; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or condition}")
        await asyncio.sleep(0.005)


async def holds(condition: Callable[[], bool], duration: float, what: str = "") -> None:
    """Check that `condition()` keeps holding for `duration` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert condition(), what or condition
        await asyncio.sleep(0.01)


@dataclass
class Node:
    signer: KeySigner
    transport: Transport
    inbox: list[tuple[Address, bytes]] = field(default_factory=list)

    @property
    def address(self) -> Address:
        return self.signer.address

    @property
    def endpoint(self) -> Endpoint:
        return self.transport.listen_address

    def received(self, sender: Address | None = None) -> list[bytes]:
        return [payload for source, payload in self.inbox if sender is None or source == sender]


Handler = Callable[[Address, bytes], Awaitable[None] | None]


def make_node(
    signer: KeySigner,
    endpoints: Mapping[Address, Endpoint] | None = None,
    *,
    port: int = 0,
    config: TransportConfig = FAST,
    handler: Callable[[Node], Handler] | None = None,
) -> Node:
    """A node (not started) listening on loopback; `handler(node)` replaces the inbox."""
    inbox: list[tuple[Address, bytes]] = []

    def record(sender: Address, payload: bytes) -> None:
        inbox.append((sender, payload))

    node = Node(signer, None, inbox)  # type: ignore[arg-type]
    on_message = handler(node) if handler is not None else record
    node.transport = Transport(
        signer.address,
        signer,
        endpoints or {},
        on_message,
        chain_id=CHAIN_ID,
        listen=(LOOPBACK, port),
        config=config,
    )
    return node


async def start_mesh(count: int, config: TransportConfig = FAST, first_key: int = 0) -> list[Node]:
    """`count` started nodes that know each other (connecting: see `connected`)."""
    nodes = [make_node(KeySigner.numbered(first_key + i), config=config) for i in range(count)]
    for node in nodes:
        await node.transport.start()
    endpoints = {node.address: node.endpoint for node in nodes}
    for node in nodes:
        node.transport.update_peers(endpoints)
    return nodes


def fully_connected(nodes: Iterable[Node]) -> Callable[[], bool]:
    nodes = list(nodes)
    addresses = {node.address for node in nodes}
    return lambda: all(node.transport.connected_peers == addresses - {node.address} for node in nodes)


async def stop_all(nodes: Iterable[Node]) -> None:
    for node in nodes:
        await node.transport.stop()


def dead_endpoint() -> Endpoint:
    """A loopback port nothing listens on (bound, then freed)."""
    import socket

    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return LOOPBACK, probe.getsockname()[1]


class Gate:
    """Holds every connection through the proxies that share it until `parties` arrived."""

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._arrived = 0
        self._open = asyncio.Event()

    async def wait(self) -> None:
        self._arrived += 1
        if self._arrived >= self._parties:
            self._open.set()
        await self._open.wait()


class Proxy:
    """Relays TCP to `target`. Armed with `tamper = "flip"`, it flips the last bit of the
    next client-to-target chunk of at least `min_chunk` bytes; with `"replay"`, it sends
    that chunk twice. With a `gate`, it relays nothing until the gate opens."""

    def __init__(self, target: Endpoint, gate: Gate | None = None, min_chunk: int = 100) -> None:
        self.target = target
        self.gate = gate
        self.min_chunk = min_chunk
        self.tamper: str | None = None
        self.tampered = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Endpoint:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        return LOOPBACK, self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(client_writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.append(upstream_writer)
        if self.gate is not None:
            await self.gate.wait()
        for source, sink, outbound in (
            (client_reader, upstream_writer, True),
            (upstream_reader, client_writer, False),
        ):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink, outbound))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, outbound: bool) -> None:
        try:
            while chunk := await source.read(1 << 16):
                if outbound and self.tamper is not None and len(chunk) >= self.min_chunk:
                    mode, self.tamper = self.tamper, None
                    self.tampered += 1
                    if mode == "flip":
                        chunk = chunk[:-1] + bytes([chunk[-1] ^ 1])
                    else:
                        sink.write(chunk)
                sink.write(chunk)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.transport.abort()


@dataclass
class RawLink:
    """A validator's end of a connection, driven by hand (handshake done, frames sealed)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sealer: FrameSealer
    opener: FrameOpener

    def send(self, kind: Kind, payload: bytes = b"") -> None:
        self.writer.write(self.sealer.seal(kind, payload))

    async def receive(self) -> tuple[Kind, bytes]:
        """The next frame; `asyncio.IncompleteReadError` once the other end closed."""
        length = int.from_bytes(await self.reader.readexactly(4), "big")
        return self.opener.open(await self.reader.readexactly(length))

    async def kinds_until_closed(self) -> list[Kind]:
        kinds = []
        while True:
            try:
                kinds.append((await self.receive())[0])
            except (asyncio.IncompleteReadError, ConnectionError):
                return kinds

    def close(self) -> None:
        self.writer.transport.abort()


async def raw_dial(endpoint: Endpoint, signer: KeySigner, peer: Address) -> RawLink:
    """Dial `peer` at `endpoint` as `signer`, up to and including its WELCOME."""
    reader, writer = await asyncio.open_connection(*endpoint)
    try:
        handshake = DialerHandshake(signer, CHAIN_ID, peer)
        writer.write(encode_plain(handshake.hello()))
        length = int.from_bytes(await reader.readexactly(4), "big")
        auth, keys = handshake.on_reply(await reader.readexactly(length))
        writer.write(encode_plain(auth))
        link = RawLink(
            reader, writer, FrameSealer(keys.dialer_to_acceptor), FrameOpener(keys.acceptor_to_dialer)
        )
        assert await link.receive() == (Kind.WELCOME, b"")
    except BaseException:
        writer.close()
        raise
    return link
