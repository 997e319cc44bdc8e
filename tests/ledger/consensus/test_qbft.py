"""The QBFT state machine, one rule at a time (validators wired by hand: `Cluster`)."""

from __future__ import annotations

import pytest
import rlp

from evm_runtime.types import Address, Hash32
from ledger.consensus.messages import (
    Commit,
    CommitCertificate,
    MalformedMessage,
    Message,
    Prepare,
    Proposal,
    RoundChange,
    certificate_of,
    encode,
    make_seal,
    sign,
    verify_certificate,
)
from ledger.consensus.qbft import (
    MAX_BACKOFF_EXPONENT,
    Behind,
    BlockBuilt,
    BlockValidated,
    Broadcast,
    BuildBlock,
    CertifiedBlockReceived,
    CommitBlock,
    Drop,
    LockState,
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
    round_timeout,
)

from .cluster import Cluster
from .simulation import GENESIS_HASH, KeySigner, make_block

NOBODY = Address(b"")


def broadcasts(actions: list, kind: type) -> list:
    return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, kind)]


def block_for(cluster: Cluster, i: int, height: int = 1, salt: int = 1) -> tuple[Hash32, bytes]:
    """A valid block built by validator i on genesis (or the given height's parent)."""
    parent = GENESIS_HASH if height == 1 else cluster.chains[cluster.honest[0]][height - 2].block_hash
    return make_block(height, parent, cluster.validators[i], salt)


def signed_proposal(
    cluster: Cluster, i: int, round_: int = 0, block: tuple[Hash32, bytes] | None = None, **kw
):
    block_hash, payload = block or block_for(cluster, i)
    return sign(Proposal(NOBODY, 1, round_, block_hash, payload, **kw), cluster.signers[i])


def send(cluster: Cluster, sender: int, message: Message, targets: list[int] | None = None) -> None:
    cluster.send(sender, message, cluster.honest if targets is None else targets)


def prepared_round_change(cluster: Cluster, i: int, round_: int, prepared_round: int, block) -> RoundChange:
    """Validator i's round change for `round_`, naming `block` as prepared in `prepared_round`."""
    prepares = tuple(
        sign(Prepare(NOBODY, 1, prepared_round, block[0]), cluster.signers[j]) for j in range(cluster.n)
    )[: cluster.nodes[cluster.honest[0]].quorum]
    change = RoundChange(
        NOBODY, 1, round_, prepared_round, block[0], prepared_block=block[1], prepares=prepares
    )
    return sign(change, cluster.signers[i])


# -- the schedule: proposers and timers ----------------------------------------------------


def test_proposers_take_turns_over_the_sorted_validators() -> None:
    validators = tuple(sorted(Address(bytes([b]) * 20) for b in (9, 3, 7, 1)))
    assert [proposer_of(validators, 1, r) for r in range(4)] == [validators[(1 + r) % 4] for r in range(4)]
    assert proposer_of(validators, 2, 0) == proposer_of(validators, 1, 1)
    instance = QbftInstance(reversed(validators), _signer_in(validators), 1)
    assert instance.validators == validators


def _signer_in(validators: tuple[Address, ...]) -> KeySigner:
    class Fixed(KeySigner):
        @property
        def address(self) -> Address:
            return validators[0]

    return Fixed(KeySigner.numbered(0).key)


def test_round_timers_double_and_stop_doubling() -> None:
    config = QbftConfig(base_timeout=0.5)
    assert [round_timeout(config, r) for r in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert round_timeout(config, 1_000) == round_timeout(config, MAX_BACKOFF_EXPONENT)


def test_a_node_must_be_a_validator() -> None:
    cluster = Cluster(4)
    with pytest.raises(ValueError):
        QbftInstance(cluster.validators, KeySigner.numbered(99), 1)


# -- the happy paths -----------------------------------------------------------------------


def test_one_validator_decides_alone_with_the_same_code() -> None:
    instance = QbftInstance([KeySigner.numbered(0).address], KeySigner.numbered(0), 1)
    started = instance.start()
    assert started == [StartTimer(1, 0, 1.0), BuildBlock(1, 0)]
    block_hash, block = make_block(1, GENESIS_HASH, instance.address, 0)
    actions = instance.handle(BlockBuilt(1, block_hash, block))
    commits = [a for a in actions if isinstance(a, CommitBlock)]
    assert len(commits) == 1 and commits[0].block_hash == block_hash
    assert verify_certificate(block_hash, commits[0].certificate, instance.validators)
    assert len(commits[0].certificate.seals) == 1
    assert instance.height == 2 and actions[-2:] == [StartTimer(2, 0, 1.0), BuildBlock(2, 0)]


@pytest.mark.parametrize("n", [4, 7])
def test_validators_decide_the_same_blocks(n: int) -> None:
    cluster = Cluster(n, build_until=3)
    cluster.start()
    cluster.flush()
    chains = [[stored.block_hash for stored in chain] for chain in cluster.chains.values()]
    assert len(chains[0]) == 3 and all(chain == chains[0] for chain in chains)
    # each certificate is a quorum its holder saw, so they may differ; each verifies
    for height, stored in enumerate(cluster.chains[0], start=1):
        assert all(
            verify_certificate(
                chain[height - 1].block_hash, chain[height - 1].certificate, cluster.validators
            )
            for chain in cluster.chains.values()
        )
        builder = proposer_of(cluster.validators, height, 0)
        assert builder in stored.block
    assert all(
        not node.counters.keys() - {Drop.OLD_HEIGHT, Drop.STALE_ROUND} for node in cluster.nodes.values()
    )


# -- what is dropped -----------------------------------------------------------------------


def test_messages_from_outside_the_validators_are_dropped_and_counted() -> None:
    cluster = Cluster(4)
    node = cluster.nodes[0]
    outsider = KeySigner.numbered(99)
    node.handle(MessageReceived(encode(sign(Prepare(NOBODY, 1, 0, Hash32(b"\x01" * 32)), outsider))))
    impostor = sign(Prepare(NOBODY, 1, 0, Hash32(b"\x01" * 32)), outsider)
    impostor = Prepare(cluster.validators[1], 1, 0, impostor.block_hash, impostor.signature)
    node.handle(MessageReceived(encode(impostor)))
    node.handle(MessageReceived(b"\xc0not a message"))
    assert node.counters == {Drop.NOT_VALIDATOR: 1, Drop.BAD_SIGNATURE: 1, Drop.MALFORMED: 1}


def test_only_the_rounds_proposer_may_propose() -> None:
    cluster = Cluster(4)
    cluster.start()
    not_proposer = (1 + 1) % 4
    send(cluster, not_proposer, signed_proposal(cluster, not_proposer), targets=[0])
    assert cluster.nodes[0].counters[Drop.WRONG_PROPOSER] == 1
    assert not broadcasts(cluster.actions[0], Prepare)


def test_a_commit_seal_must_be_its_authors() -> None:
    cluster = Cluster(4)
    block_hash, _ = block_for(cluster, 1)
    seal = make_seal(cluster.signers[2], block_hash, 0)
    send(cluster, 1, sign(Commit(NOBODY, 1, 0, block_hash, seal), cluster.signers[1]), targets=[0])
    assert cluster.nodes[0].counters[Drop.BAD_SEAL] == 1


def test_duplicates_are_counted_and_conflicts_kept_as_evidence() -> None:
    cluster = Cluster(4)
    first = sign(Prepare(NOBODY, 1, 0, block_for(cluster, 1)[0]), cluster.signers[2])
    second = sign(Prepare(NOBODY, 1, 0, block_for(cluster, 1, salt=2)[0]), cluster.signers[2])
    for message in (first, first, second):
        send(cluster, 2, message, targets=[0])
    node = cluster.nodes[0]
    assert node.counters == {Drop.DUPLICATE: 1, Drop.EQUIVOCATION: 1}
    assert [(e.author, e.first, e.second) for e in node.evidence] == [(cluster.validators[2], first, second)]


def test_an_invalid_block_is_not_prepared() -> None:
    cluster = Cluster(4)
    cluster.start()
    block_hash, payload = make_block(1, Hash32(b"\x01" * 32), cluster.validators[1], 0)  # wrong parent
    send(cluster, 1, signed_proposal(cluster, 1, block=(block_hash, payload)), targets=[0])
    assert ValidateBlock(1, block_hash, payload) in cluster.actions[0]
    assert cluster.nodes[0].counters[Drop.INVALID_BLOCK] == 1
    assert not broadcasts(cluster.actions[0], Prepare)


# -- prepare, commit, decide ---------------------------------------------------------------


def test_a_prepare_quorum_locks_the_block_before_its_seal_is_sent() -> None:
    cluster = Cluster(4, honest=[0])
    cluster.start()
    proposal = signed_proposal(cluster, 1)
    send(cluster, 1, proposal)
    assert broadcasts(cluster.actions[0], Prepare)[0].block_hash == proposal.block_hash
    for i in (1, 2):
        send(cluster, i, sign(Prepare(NOBODY, 1, 0, proposal.block_hash), cluster.signers[i]))
    actions = cluster.actions[0]
    (commit,) = broadcasts(actions, Commit)
    position = next(k for k, a in enumerate(actions) if isinstance(a, Broadcast) and a.message == commit)
    lock = actions[position - 1]
    assert isinstance(lock, PersistLock) and lock.lock.prepared is not None
    assert lock.lock.prepared.block_hash == proposal.block_hash and len(lock.lock.prepared.prepares) == 3
    assert verify_certificate(
        proposal.block_hash, CommitCertificate(0, (commit.seal,)), cluster.validators[:1]
    )


def test_a_commit_quorum_of_an_earlier_round_still_decides() -> None:
    cluster = Cluster(4, honest=[0])
    cluster.start()
    proposal = signed_proposal(cluster, 1)
    send(cluster, 1, proposal)
    cluster.expire(0)  # round 1 now
    assert cluster.nodes[0].round == 1
    commits = [
        sign(
            Commit(NOBODY, 1, 0, proposal.block_hash, make_seal(cluster.signers[i], proposal.block_hash, 0)),
            s,
        )
        for i, s in enumerate(cluster.signers[1:], start=1)
    ]
    for i, commit in enumerate(commits, start=1):
        send(cluster, i, commit)
    (decided,) = cluster.chains[0]
    assert decided.block_hash == proposal.block_hash and decided.certificate == certificate_of(commits)


# -- round changes -------------------------------------------------------------------------


def test_an_expired_round_asks_for_the_next_with_a_longer_timer() -> None:
    cluster = Cluster(4, config=QbftConfig(base_timeout=2.0))
    cluster.start()
    actions = cluster.expire(0)
    assert StartTimer(1, 1, 4.0) in actions
    (change,) = broadcasts(actions, RoundChange)
    assert (change.round, change.prepared_round, change.prepared_block) == (1, None, None)
    assert cluster.nodes[0].handle(TimerExpired(1, 0)) == []  # a stale timer


def test_a_round_change_names_the_prepared_block_with_its_prepares() -> None:
    cluster = Cluster(4, honest=[0])
    cluster.start()
    proposal = signed_proposal(cluster, 1)
    send(cluster, 1, proposal)
    for i in (1, 2):
        send(cluster, i, sign(Prepare(NOBODY, 1, 0, proposal.block_hash), cluster.signers[i]))
    (change,) = broadcasts(cluster.expire(0), RoundChange)
    assert (change.prepared_round, change.prepared_hash, change.prepared_block) == (
        0,
        proposal.block_hash,
        proposal.block,
    )
    assert {p.author for p in change.prepares} == set(cluster.validators[:3])


def test_f_plus_one_round_changes_pull_a_node_forward() -> None:
    cluster = Cluster(4, honest=[0])  # f = 1
    cluster.start()
    send(cluster, 1, sign(RoundChange(NOBODY, 1, 5), cluster.signers[1]))
    assert cluster.nodes[0].round == 0  # one may be faulty
    send(cluster, 2, sign(RoundChange(NOBODY, 1, 3), cluster.signers[2]))
    assert cluster.nodes[0].round == 3  # the highest round that f + 1 reached
    assert [c.round for c in broadcasts(cluster.actions[0], RoundChange)] == [3]


def test_a_later_rounds_proposal_needs_a_quorum_of_round_changes() -> None:
    cluster = Cluster(4, honest=[0])
    cluster.start()
    proposer = (1 + 2) % 4  # of round 2
    changes = tuple(sign(RoundChange(NOBODY, 1, 2), cluster.signers[i]) for i in (1, 2, 3))
    send(cluster, proposer, signed_proposal(cluster, proposer, 2, round_changes=changes[:2]))
    assert cluster.nodes[0].counters[Drop.UNJUSTIFIED] == 1 and cluster.nodes[0].round == 0
    other = block_for(cluster, proposer, salt=2)
    send(cluster, proposer, signed_proposal(cluster, proposer, 2, block=other, round_changes=changes))
    assert cluster.nodes[0].round == 2  # justified: it follows the quorum
    assert broadcasts(cluster.actions[0], Prepare)[-1].block_hash == other[0]


def test_the_new_proposer_re_proposes_the_highest_prepared_block() -> None:
    cluster = Cluster(4, honest=[(1 + 2) % 4])  # node 3 proposes round 2
    proposer = cluster.honest[0]
    cluster.start()
    old, older = block_for(cluster, 2, salt=1), block_for(cluster, 1, salt=2)
    send(cluster, 0, prepared_round_change(cluster, 0, 2, 1, old))
    send(cluster, 1, prepared_round_change(cluster, 1, 2, 0, older))
    send(cluster, 2, sign(RoundChange(NOBODY, 1, 2), cluster.signers[2]))
    proposals = broadcasts(cluster.actions[proposer], Proposal)
    assert cluster.nodes[proposer].round == 2 and len(proposals) == 1
    (proposal,) = proposals
    assert (proposal.round, proposal.block_hash, proposal.block) == (2, old[0], old[1])
    assert {p.round for p in proposal.prepares} == {1} and len(proposal.prepares) == 3
    # it joined round 2 on f + 1 round changes: its own and the first two justify it
    assert len(proposal.round_changes) == 3 and all(
        rc.prepared_block is None for rc in proposal.round_changes
    )


def test_a_proposal_that_ignores_a_prepared_block_is_refused() -> None:
    cluster = Cluster(4, honest=[0])
    cluster.start()
    proposer = (1 + 2) % 4
    prepared = block_for(cluster, 1, salt=1)
    changes = (
        prepared_round_change(cluster, 1, 2, 0, prepared).without_attachments(),
        sign(RoundChange(NOBODY, 1, 2), cluster.signers[2]),
        sign(RoundChange(NOBODY, 1, 2), cluster.signers[3]),
    )
    fresh = block_for(cluster, proposer, salt=9)
    send(cluster, proposer, signed_proposal(cluster, proposer, 2, block=fresh, round_changes=changes))
    assert cluster.nodes[0].counters[Drop.UNJUSTIFIED] == 1
    justified = prepared_round_change(cluster, 1, 2, 0, prepared).prepares
    again = signed_proposal(cluster, proposer, 2, block=prepared, round_changes=changes, prepares=justified)
    send(cluster, proposer, again)
    assert cluster.nodes[0].round == 2
    assert broadcasts(cluster.actions[0], Prepare)[-1].block_hash == prepared[0]


def test_a_round_change_without_its_prepares_is_dropped() -> None:
    cluster = Cluster(4, honest=[0])
    block = block_for(cluster, 1)
    good = prepared_round_change(cluster, 1, 2, 0, block)
    short = sign(
        RoundChange(NOBODY, 1, 2, 0, block[0], prepared_block=block[1], prepares=good.prepares[:2]),
        cluster.signers[1],
    )
    from_the_future = prepared_round_change(cluster, 2, 2, 2, block)
    send(cluster, 1, short)
    send(cluster, 2, from_the_future)
    assert cluster.nodes[0].counters[Drop.INVALID_ROUND_CHANGE] == 2


# -- heights: catching up and helping others -----------------------------------------------


def test_messages_for_a_later_height_wait_and_say_the_node_is_behind() -> None:
    cluster = Cluster(4, build_until=2)
    cluster.start()
    cluster.flush(keep=lambda sent, target: target != 0 or sent.message.height == 2)  # it misses height 1
    assert cluster.nodes[0].height == 1 and all(cluster.nodes[i].height == 3 for i in (1, 2, 3))
    assert any(isinstance(a, Behind) and a.height == 2 for a in cluster.actions[0])
    assert not broadcasts(cluster.actions[0], Prepare)
    stored = cluster.chains[1][0]
    cluster.handle(0, CertifiedBlockReceived(1, stored.block_hash, stored.block, stored.certificate))
    # height 1 fetched, the commits of height 2 it kept decide height 2 at once
    assert [b.block_hash for b in cluster.chains[0]] == [b.block_hash for b in cluster.chains[1]]
    assert cluster.nodes[0].height == 3


def test_a_round_change_for_a_decided_height_reports_its_author_behind() -> None:
    cluster = Cluster(4)
    cluster.start()
    cluster.flush()
    stuck = sign(RoundChange(NOBODY, 1, 1), cluster.signers[3])
    actions = cluster.nodes[0].handle(MessageReceived(encode(stuck)))
    assert actions == [PeerBehind(cluster.validators[3], 1)]
    assert cluster.nodes[0].handle(MessageReceived(encode(stuck))) == []  # once per (height, round)


def test_a_certified_block_is_checked_then_committed() -> None:
    cluster = Cluster(4, honest=[0], auto_execute=False)
    cluster.start()
    block_hash, block = block_for(cluster, 1)
    seals = tuple(make_seal(cluster.signers[i], block_hash, 4) for i in (1, 2, 3))
    node = cluster.nodes[0]
    assert node.handle(CertifiedBlockReceived(1, block_hash, block, CommitCertificate(4, seals[:2]))) == []
    assert node.counters[Drop.BAD_CERTIFICATE] == 1
    actions = node.handle(CertifiedBlockReceived(1, block_hash, block, CommitCertificate(4, seals)))
    assert actions == [ValidateBlock(1, block_hash, block)]
    actions = node.handle(BlockValidated(1, block_hash, block, True))
    assert actions[0] == CommitBlock(1, block_hash, block, CommitCertificate(4, seals)) and node.height == 2


# -- restarts ------------------------------------------------------------------------------


def test_a_restarted_node_keeps_its_word() -> None:
    cluster = Cluster(4, honest=[0])
    cluster.start()
    proposal = signed_proposal(cluster, 1)
    send(cluster, 1, proposal)
    for i in (1, 2):
        send(cluster, i, sign(Prepare(NOBODY, 1, 0, proposal.block_hash), cluster.signers[i]))
    lock = [a.lock for a in cluster.actions[0] if isinstance(a, PersistLock)][-1]
    assert lock.prepared is not None and lock.accepted_hash == proposal.block_hash
    # it crashes; it comes back with only its lock, as it stored it
    stored = encode_lock(lock)
    assert decode_lock(stored) == lock
    cluster.nodes[0] = QbftInstance(cluster.validators, cluster.signers[0], 1, lock=decode_lock(stored))
    restarted = cluster.nodes[0]
    said = broadcasts(cluster.actions[0], Prepare) + broadcasts(cluster.actions[0], Commit)
    started = restarted.start()
    assert started[0] == StartTimer(1, 0, 1.0)
    assert broadcasts(started, Prepare) + broadcasts(started, Commit) == said  # the same again, word for word
    conflicting = signed_proposal(cluster, 1, block=block_for(cluster, 1, salt=7))
    assert broadcasts(restarted.handle(MessageReceived(encode(conflicting))), Prepare) == []
    (change,) = broadcasts(restarted.handle(TimerExpired(1, 0)), RoundChange)
    assert (change.prepared_round, change.prepared_hash) == (0, proposal.block_hash)


def test_a_restarted_proposer_says_the_same_again() -> None:
    cluster = Cluster(4, honest=[1])  # the proposer of (1, 0)
    cluster.start()
    (proposal,) = broadcasts(cluster.actions[1], Proposal)
    lock = [a.lock for a in cluster.actions[1] if isinstance(a, PersistLock)][0]
    assert lock.proposal == proposal
    assert decode_lock(encode_lock(lock)) == lock
    restarted = QbftInstance(cluster.validators, cluster.signers[1], 1, lock=lock)
    assert broadcasts(restarted.start(), Proposal) == [proposal]


def test_a_stored_lock_is_read_back_exactly_or_not_at_all() -> None:
    assert decode_lock(encode_lock(LockState(7))) == LockState(7)
    with pytest.raises(MalformedMessage):
        decode_lock(encode_lock(LockState(7)) + b"\x00")
    not_locks = (
        b"\xc0",
        rlp.encode([7, 0, [b"x"], b"", []]),  # a list for a hash
        rlp.encode([7, 0, b"", b"", [1, b"short", b"", []]]),  # a short prepared hash
    )
    for data in not_locks:
        with pytest.raises(MalformedMessage):
            decode_lock(data)


# -- determinism ---------------------------------------------------------------------------


def test_the_same_events_give_the_same_actions() -> None:
    def run() -> list[list]:
        cluster = Cluster(4, build_until=2)
        cluster.start()
        cluster.flush(keep=lambda sent, target: (target + sent.sender) % 3 != 0)
        for i in cluster.honest:
            cluster.expire(i)
        cluster.flush()
        return [cluster.actions[i] for i in cluster.honest]

    assert run() == run()
