"""The ordering service's answers to peers catching up (`Ordering._send_blocks`): paced per peer."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from evm_runtime.types import Address, Hash32
from ledger.consensus.messages import CommitCertificate
from ledger.consensus.wire import DecidedBlock
from ledger.mempool import Mempool
from ledger.ordering import SYNC_ANSWER_SECONDS, Ordering

PEER, OTHER = Address(b"\x01" * 20), Address(b"\x02" * 20)
BLOCK = DecidedBlock(1, Hash32(b"\x0b" * 32), b"proposal", CommitCertificate(0, (b"\x05" * 65,)))


class Network:
    """What the ordering service sends, and when."""

    def __init__(self) -> None:
        self.sent: list[tuple[Address, float]] = []

    def send(self, peer: Address, payload: bytes) -> bool:
        self.sent.append((peer, time.monotonic()))
        return True


def ordering(network: Network) -> Ordering:
    store = SimpleNamespace(head=lambda: SimpleNamespace(number=5, timestamp=1_000))
    service = Ordering(store, Mempool(), None, None, dict, network=network)  # type: ignore[arg-type]
    service._read_head()
    service._decided_from = lambda first: [BLOCK]  # type: ignore[method-assign]
    return service


def test_a_peer_asking_without_pause_is_answered_once_a_tenth_of_a_second() -> None:
    async def scenario() -> None:
        network = Network()
        service = ordering(network)
        reads = iter([0.03])  # the first answer's blocks are slow to read: gaps still hold

        def decided_from(first: int) -> list[DecidedBlock]:
            time.sleep(next(reads, 0))
            return [BLOCK]

        service._decided_from = decided_from  # type: ignore[method-assign]
        for _ in range(3):
            await service._send_blocks(PEER, 1)
        await service._send_blocks(PEER, 1, asked=False)  # unasked, too soon: not sent
        await service._send_blocks(OTHER, 1)  # another peer is not held up
        times = [at for peer, at in network.sent if peer == PEER]
        assert len(times) == 3 and [peer for peer, _ in network.sent].count(OTHER) == 1
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert all(gap >= SYNC_ANSWER_SECONDS * 0.99 for gap in gaps)
        assert service.counters["sync_answers_paced"] == 3

    asyncio.run(scenario())
