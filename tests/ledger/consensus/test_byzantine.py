"""A faulty validator (hand-driven test double) that sends conflicting proposals and votes
cannot make two honest validators commit different blocks at one height."""

from __future__ import annotations

from collections.abc import Iterable

from evm_runtime.types import Address, Hash32
from ledger.consensus.messages import Commit, Message, Prepare, Proposal, RoundChange, make_seal, sign
from ledger.consensus.qbft import CertifiedBlockReceived, Drop, PeerBehind

from .cluster import Cluster, Sent
from .simulation import GENESIS_HASH, make_block

NOBODY = Address(b"")


class Faulty:
    """Validator `index` of `cluster`, sending what it likes to whom it likes."""

    def __init__(self, cluster: Cluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.signer = cluster.signers[index]

    def send(self, message: Message, targets: Iterable[int]) -> None:
        self.cluster.send(self.index, sign(message, self.signer), targets)

    def vote(
        self, height: int, round_: int, block_hash: Hash32, targets: list[int], *, commit: bool = True
    ) -> None:
        self.send(Prepare(NOBODY, height, round_, block_hash), targets)
        if commit:
            seal = make_seal(self.signer, block_hash, round_)
            self.send(Commit(NOBODY, height, round_, block_hash, seal), targets)


def decided(cluster: Cluster, height: int) -> set[bytes]:
    return {chain[height - 1].block_hash for chain in cluster.chains.values() if len(chain) >= height}


def catch_up(cluster: Cluster) -> None:
    """What the transport will do: answer `PeerBehind` with the certified blocks."""
    for i in cluster.honest:
        for action in list(cluster.actions[i]):
            if isinstance(action, PeerBehind):
                peer = cluster.validators.index(action.peer)
                for height, stored in enumerate(cluster.chains[i][action.height - 1 :], start=action.height):
                    if len(cluster.chains[peer]) < height:
                        event = CertifiedBlockReceived(
                            height, stored.block_hash, stored.block, stored.certificate
                        )
                        cluster.handle(peer, event)


def test_conflicting_proposals_and_votes_do_not_split_the_honest_nodes() -> None:
    # Validator 1 proposes height 1 at round 0, and is faulty: block A to nodes 0 and 2,
    # block B to node 3 (and to node 0 too), votes for A to 0 and 2, for B to 3.
    cluster = Cluster(4, honest=[0, 2, 3])
    faulty = Faulty(cluster, 1)
    cluster.start()
    a = make_block(1, GENESIS_HASH, cluster.validators[1], 1)
    b = make_block(1, GENESIS_HASH, cluster.validators[1], 2)
    faulty.send(Proposal(NOBODY, 1, 0, *a), [0, 2])
    faulty.send(Proposal(NOBODY, 1, 0, *b), [3, 0])
    faulty.vote(1, 0, a[0], [0, 2])
    faulty.vote(1, 0, b[0], [3])
    cluster.flush()
    assert decided(cluster, 1) == {a[0]}  # 0 and 2 with the faulty node's votes: a quorum
    assert len(cluster.chains[3]) == 0  # B has two prepares, never a quorum
    (evidence,) = cluster.nodes[0].evidence
    assert isinstance(evidence.first, Proposal) and isinstance(evidence.second, Proposal)
    assert {evidence.first.block_hash, evidence.second.block_hash} == {a[0], b[0]}
    # node 3 times out; its round change tells the others it is behind; it fetches A
    cluster.expire(3)
    cluster.flush()
    catch_up(cluster)
    assert decided(cluster, 1) == {a[0]} and len(cluster.chains[3]) == 1


def test_a_faulty_proposer_cannot_replace_a_block_some_honest_node_decided() -> None:
    # Honest validator 1 proposes A at round 0; the commits reach node 0 only, which
    # decides A. Nodes 1 and 3 prepared A but did not decide. The faulty validator 2
    # proposes round 1 and tries block B.
    cluster = Cluster(4, honest=[0, 1, 3])
    faulty = Faulty(cluster, 2)
    cluster.start()

    def apart(sent: Sent, target: int) -> bool:  # node 0 has moved on; round 0's commits stay lost
        return target != 0 and not (isinstance(sent.message, Commit) and sent.message.round == 0)

    cluster.flush(keep=lambda sent, target: not isinstance(sent.message, Commit) or target == 0)
    (proposal,) = cluster.sent_by(1, Proposal)
    a = proposal.block_hash
    assert decided(cluster, 1) == {a} and [len(cluster.chains[i]) for i in (1, 3)] == [0, 0]

    # Round 1: nodes 1 and 3 name A as prepared; the faulty proposer hides its own lock.
    for i in (1, 3):
        cluster.expire(i)
    cluster.flush(keep=apart)
    changes = [s.message for s in cluster.outbox if isinstance(s.message, RoundChange)]
    assert all(rc.prepared_hash == a for rc in changes)
    hiding = sign(RoundChange(NOBODY, 1, 1), faulty.signer)
    justification = (*(rc.without_attachments() for rc in changes), hiding)
    b = make_block(1, GENESIS_HASH, cluster.validators[2], 7)
    faulty.send(Proposal(NOBODY, 1, 1, *b, round_changes=justification), [1, 3])  # ignores A's prepares
    faulty.send(Proposal(NOBODY, 1, 1, *b, round_changes=(hiding,)), [1, 3])  # no quorum at all
    faulty.vote(1, 1, b[0], [1, 3])
    cluster.flush(keep=apart)
    assert all(cluster.nodes[i].counters[Drop.UNJUSTIFIED] == 2 for i in (1, 3))
    assert all(cluster.nodes[i].counters[Drop.EQUIVOCATION] == 0 for i in (1, 3))  # the first was refused
    assert not [p for p in cluster.sent_by(1, Prepare) + cluster.sent_by(3, Prepare) if p.block_hash == b[0]]

    # Round 2 has an honest proposer (3): with the faulty node's round change it has a
    # quorum, so it must re-propose A, and 1 and 3 decide A.
    for i in (1, 3):
        cluster.expire(i)
    faulty.send(RoundChange(NOBODY, 1, 2), [1, 3])
    cluster.flush(keep=apart)
    (reproposal,) = [p for p in cluster.sent_by(3, Proposal) if p.round == 2]
    assert reproposal.block_hash == a
    faulty.vote(1, 2, a, [1, 3])
    cluster.flush(keep=apart)
    assert decided(cluster, 1) == {a} and all(len(chain) == 1 for chain in cluster.chains.values())
