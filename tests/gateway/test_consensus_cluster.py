"""Validators deciding blocks together (`ledger.ordering` over real loopback TCP), in
this process: agreement, forwarding, a validator stopped and catching up, no progress
without a quorum."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from prometheus_client.parser import text_string_to_metric_families

from evm_runtime.types import Address
from gateway.node import EnclaveValidatorKey, Node
from ledger.consensus.messages import (
    Commit,
    Prepare,
    Proposal,
    decode,
    decode_certificate,
    encode,
    make_seal,
    verify_certificate,
)
from ledger.consensus.messages import sign as sign_message
from ledger.consensus.wire import Channel, channel_of, tagged

from .cluster import Cluster, Governor, agree, eventually, included, run, transfer


def test_four_validators_commit_what_any_of_them_received(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 4)
        nodes = await cluster.start_all()
        try:
            sent = [nodes[i % 4].send_raw_transaction(transfer(i)) for i in range(8)]
            await agree(nodes, sent)
            metrics = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(nodes[0].metrics.exposition().decode())
                for sample in family.samples
            }
            for peer in cluster.addresses[1:]:
                assert metrics[("conclave_peer_connected", (("peer", to_checksum_address(peer)),))] == 1
                sent_to = (("kind", "sent"), ("peer", to_checksum_address(peer)))
                assert metrics[("conclave_peer_frames_total", sent_to)] > 0
            assert metrics[("conclave_consensus_validators", ())] == 4
            for number in range(1, nodes[0].head.number + 1):
                blocks = {node.store.block_by_number(number) for node in nodes}
                assert len(blocks) == 1
                certificate = nodes[0].store.certificate(number)
                assert certificate is not None
            assert all(node.ordering.instance is not None for node in nodes)
        finally:
            await cluster.stop_all()

    run(scenario)


def test_a_stopped_validator_catches_up_and_the_others_go_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 4)
        nodes = await cluster.start_all()
        try:
            await agree(nodes, [nodes[0].send_raw_transaction(transfer(0))])
            await cluster.stop(3)
            live = cluster.running()
            sent = [live[i % 3].send_raw_transaction(transfer(i)) for i in range(1, 6)]
            await agree(live, sent)
            back = await cluster.start(3)
            await eventually(lambda: back.head.hash == live[0].head.hash, what="catch-up")
            more = [back.send_raw_transaction(transfer(6))]
            await agree(cluster.running(), more)
        finally:
            await cluster.stop_all()

    run(scenario)


def test_a_validator_that_lost_its_ledger_fetches_the_certified_blocks(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 4)
        nodes = await cluster.start_all()
        try:
            for nonce in range(3):  # three blocks
                await agree(nodes, [nodes[nonce].send_raw_transaction(transfer(nonce))])
            await cluster.stop(3)
            for suffix in ("", "-wal", "-shm"):
                (cluster.dir(3) / f"ledger.db{suffix}").unlink(missing_ok=True)
            back = await cluster.start(3)  # genesis again, then the blocks from its peers
            live = cluster.running()
            await eventually(lambda: back.head.hash == live[0].head.hash, what="catch-up")
            assert back.ordering.counters["synced_blocks"] == live[0].head.number
            for number in range(1, back.head.number + 1):
                certificate = back.store.certificate(number)
                assert certificate is not None
                stored = back.store.block_by_number(number)
                assert stored is not None
                assert verify_certificate(stored.hash, decode_certificate(certificate), cluster.addresses)
            await agree(live, [back.send_raw_transaction(transfer(3))])
        finally:
            await cluster.stop_all()

    run(scenario)


def test_two_of_four_down_commit_nothing_until_one_returns(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 4)
        nodes = await cluster.start_all()
        try:
            await agree(nodes, [nodes[0].send_raw_transaction(transfer(0))])
            await cluster.stop(2)
            await cluster.stop(3)
            live = cluster.running()
            height = live[0].head.number
            stuck = live[0].send_raw_transaction(transfer(1))
            await asyncio.sleep(3)
            assert {node.head.number for node in live} == {height}
            await cluster.start(2)
            await agree(cluster.running(), [stuck])
        finally:
            await cluster.stop_all()

    run(scenario)


class Equivocating:
    """A faulty validator's network: what it proposes, it also proposes otherwise (a block
    of its own, one second later) to half the others, and it prepares and commits both."""

    def __init__(self, node: Node, peers: list[Address]) -> None:
        self.node, self.inner, self.peers = node, node.transport, peers
        assert self.inner is not None
        self.signer = EnclaveValidatorKey(node.enclave, node.address)
        self.twins = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, peer: Address, payload: bytes) -> bool:
        return self.inner.send(peer, payload)  # type: ignore[union-attr]

    def broadcast(self, payload: bytes) -> int:
        channel, body = channel_of(payload)
        message = decode(body) if channel is Channel.CONSENSUS else None
        if not isinstance(message, (Proposal, Prepare, Commit)):
            return self.inner.broadcast(payload)  # type: ignore[union-attr]
        twin = self._twin(message)
        half = len(self.peers) // 2
        for i, peer in enumerate(self.peers):
            self.send(peer, payload)
            if not isinstance(message, Proposal) or i >= half:
                self.send(peer, tagged(Channel.CONSENSUS, encode(twin)))
        return len(self.peers)

    def _twin(self, message: Proposal | Prepare | Commit) -> Proposal | Prepare | Commit:
        """The same message for another block of the same height and round."""
        result = self.node.enclave.execute([], self.node.head.timestamp + 7)
        other = result.block.hash
        self.twins += 1
        match message:
            case Proposal():
                twin: Proposal | Prepare | Commit = replace(message, block_hash=other, block=result.payload)
            case Prepare():
                twin = replace(message, block_hash=other)
            case Commit():
                twin = replace(message, block_hash=other, seal=make_seal(self.signer, other, message.round))
        return sign_message(twin, self.signer)


def test_a_validator_proposing_and_voting_twice_cannot_split_the_others(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 4)
        nodes = await cluster.start_all()
        faulty = nodes[3]
        honest = nodes[:3]
        equivocating = Equivocating(faulty, [node.address for node in honest])
        faulty.ordering._network = equivocating  # type: ignore[assignment]
        try:
            sent = []
            for nonce in range(12):  # every validator proposes some heights
                sent.append(nodes[nonce % 4].send_raw_transaction(transfer(nonce)))
                await asyncio.sleep(0.05)
            await eventually(
                lambda: all(included(node, h) for node in honest for h in sent), timeout=60, what="inclusion"
            )
            assert equivocating.twins > 0
            top = min(node.head.number for node in honest)
            for number in range(1, top + 1):
                assert len({node.store.block_by_number(number) for node in honest}) == 1, number
            assert sum(node.ordering.instance.counters["equivocation"] for node in honest) > 0  # type: ignore[union-attr]
        finally:
            await cluster.stop_all()

    run(scenario, timeout=120)


def test_validators_join_and_leave_by_governance_from_the_next_block(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 4, spare=1)
        nodes = await cluster.start_all()
        newcomer = cluster.addresses[4]
        try:
            governor = Governor(nodes[0])
            await governor.enact(
                "add_validator", {"quote": cluster.quote(4), "endpoint": cluster.endpoint(4)}
            )
            await eventually(lambda: all(newcomer in n.ordering.validators for n in nodes), what="five")
            joined = await cluster.start(4)  # takes the secrets from validator 0, then the chain
            await eventually(lambda: joined.head.hash == nodes[0].head.hash, what="catch-up")
            assert joined.ordering.instance is not None and joined.ordering.counters["synced_blocks"] > 0
            everyone = cluster.running()
            await agree(everyone, [joined.send_raw_transaction(transfer(0))])
            assert all(node.ordering.status()["quorum"] == 4 for node in everyone)

            leaving = cluster.addresses[1]
            await governor.enact("remove_validator", {"address": leaving})
            await eventually(lambda: all(leaving not in n.ordering.validators for n in everyone), what="four")
            assert nodes[1].ordering.instance is None  # it follows the chain, and votes no more
            await cluster.stop(1)
            await cluster.stop(2)  # four validators, one of them down: three still decide
            live = cluster.running()
            await agree(live, [live[0].send_raw_transaction(transfer(1))])
            assert len({n.head.hash for n in live}) == 1
        finally:
            await cluster.stop_all()

    run(scenario, timeout=150)
