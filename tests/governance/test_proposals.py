"""The governance state machine (`governance.proposals`, `governance.actions`)."""

from __future__ import annotations

import pytest

from governance.actions import ActionEnvironment, AttestedNode
from governance.constitution import MAJORITY, TWO_THIRDS, Constitution, Threshold, default_constitution
from governance.exceptions import (
    GovernanceError,
    InvalidAction,
    InvalidConstitution,
    NotAMember,
    ProposalClosed,
    UnknownProposal,
)
from governance.proposals import expire, propose, vote, votes_needed, withdraw
from governance.state import Action, GovernanceState, Member, ProposalState

A, B, C, D = (bytes([n]) * 20 for n in (0xA1, 0xB2, 0xC3, 0xD4))
OUTSIDER = b"\xee" * 20
USER = b"\x05" * 20
T0 = 1_700_000_000
NOW = ActionEnvironment(now=T0)
MEASUREMENT = b"\x42" * 32


def consortium(*members: bytes, constitution: Constitution | None = None) -> GovernanceState:
    return GovernanceState(
        members={m: Member(f"member {m[0]:#x}") for m in members},
        constitution=constitution or default_constitution(),
    )


def passed(state: GovernanceState, actions: list[Action], voters: list[bytes]) -> tuple[GovernanceState, int]:
    state, pid = propose(state, voters[0], actions, NOW)
    for voter in voters:
        state = vote(state, voter, pid, True, NOW)
    return state, pid


ADD_USER = Action("add_user", {"address": USER})


def test_thresholds_count_votes_over_members() -> None:
    assert [votes_needed(MAJORITY, n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    assert [votes_needed(TWO_THIRDS, n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 2, 3, 4, 4]
    with pytest.raises(InvalidConstitution):
        Threshold(1, 1, strict=True)
    with pytest.raises(InvalidConstitution):
        Threshold(0, 3, strict=False)
    with pytest.raises(InvalidConstitution):
        Threshold(4, 3)


def test_a_user_is_added_by_two_of_three() -> None:
    state, pid = propose(consortium(A, B, C), A, [ADD_USER], NOW)
    state = vote(state, A, pid, True, NOW)
    assert state.proposals[pid].state is ProposalState.OPEN and USER not in state.users
    state = vote(state, B, pid, True, NOW)
    assert state.proposals[pid].state is ProposalState.ACCEPTED and USER in state.users


def test_only_members_propose_and_vote() -> None:
    state = consortium(A, B, C)
    with pytest.raises(NotAMember, match="not a member"):
        propose(state, OUTSIDER, [ADD_USER], NOW)
    state, pid = propose(state, A, [ADD_USER], NOW)
    with pytest.raises(NotAMember):
        vote(state, OUTSIDER, pid, True, NOW)
    with pytest.raises(UnknownProposal):
        vote(state, A, pid + 1, True, NOW)


def test_a_ballot_may_change_while_open_and_no_votes_reject_once_the_threshold_is_unreachable() -> None:
    state, pid = propose(consortium(A, B, C, D), A, [ADD_USER], NOW)
    state = vote(state, A, pid, False, NOW)
    state = vote(state, A, pid, True, NOW)  # changed its mind
    assert state.proposals[pid].ballots == {A: True}
    state = vote(state, B, pid, False, NOW)
    assert state.proposals[pid].state is ProposalState.OPEN  # 3 of 4 still possible
    state = vote(state, C, pid, False, NOW)
    assert state.proposals[pid].state is ProposalState.REJECTED
    with pytest.raises(ProposalClosed, match="rejected"):
        vote(state, D, pid, True, NOW)


def test_changing_the_constitution_needs_two_thirds_and_closes_other_proposals() -> None:
    state = consortium(A, B, C, D)
    state, other = propose(state, A, [ADD_USER], NOW)
    stricter = Constitution(name="Stricter", default_threshold=TWO_THIRDS, voting_period=3600)
    state, pid = propose(state, A, [Action("set_constitution", {"constitution": stricter})], NOW)
    state = vote(state, A, pid, True, NOW)
    state = vote(state, B, pid, True, NOW)
    assert state.proposals[pid].state is ProposalState.OPEN  # a majority is not enough
    state = vote(state, C, pid, True, NOW)
    assert state.proposals[pid].state is ProposalState.ACCEPTED
    assert state.constitution.name == "Stricter" and state.constitution.version == 2
    assert state.proposals[other].state is ProposalState.DROPPED


def test_an_expired_proposal_takes_no_ballot() -> None:
    state, pid = propose(consortium(A, B, C), A, [ADD_USER], NOW)
    later = ActionEnvironment(now=T0 + state.constitution.voting_period)
    with pytest.raises(ProposalClosed, match="expired"):
        vote(state, B, pid, True, later)
    state = expire(state, later.now)
    assert state.proposals[pid].state is ProposalState.EXPIRED


def test_withdrawal_by_its_proposer_only() -> None:
    state, pid = propose(consortium(A, B, C), A, [ADD_USER], NOW)
    with pytest.raises(GovernanceError, match="only its proposer"):
        withdraw(state, B, pid, NOW)
    state = withdraw(state, A, pid, NOW)
    assert state.proposals[pid].state is ProposalState.WITHDRAWN


def test_a_veto_rejects() -> None:
    constitution = Constitution(vetoes={"remove_member": frozenset({C})})
    state, pid = propose(
        consortium(A, B, C, constitution=constitution), A, [Action("remove_member", {"address": C})], NOW
    )
    state = vote(state, A, pid, True, NOW)
    state = vote(state, C, pid, False, NOW)
    assert state.proposals[pid].state is ProposalState.REJECTED


def test_actions_apply_all_or_none() -> None:
    actions = [ADD_USER, Action("remove_user", {"address": OUTSIDER})]  # the second cannot apply
    state, pid = passed(consortium(A), actions, [A])
    assert state.proposals[pid].state is ProposalState.FAILED
    assert "is not a user" in state.proposals[pid].failure
    assert USER not in state.users


def test_the_last_member_and_unknown_actions_are_refused() -> None:
    state, pid = passed(consortium(A), [Action("remove_member", {"address": A})], [A])
    assert state.proposals[pid].state is ProposalState.FAILED and state.is_member(A)
    with pytest.raises(InvalidAction, match="unknown action"):
        propose(state, A, [Action("mint_money")], NOW)
    with pytest.raises(InvalidAction, match="needs address"):
        propose(state, A, [Action("add_user")], NOW)
    with pytest.raises(InvalidAction, match="1 to 32"):
        propose(state, A, [], NOW)


def test_permissioning_config_users_and_readers() -> None:
    state = consortium(A)
    assert state.may_send(OUTSIDER)  # open by default
    state, _ = passed(
        state, [Action("set_config", {"key": "open_submission", "value": False}), ADD_USER], [A]
    )
    assert not state.may_send(OUTSIDER) and state.may_send(USER)
    state, _ = passed(state, [Action("set_config", {"key": "open_deployment", "value": False})], [A])
    assert not state.may_deploy(USER)
    state, _ = passed(state, [Action("add_user", {"address": USER, "deploy": True})], [A])
    assert state.may_deploy(USER)
    state, pid = passed(state, [Action("set_config", {"key": "block_gas_limit", "value": 10})], [A])
    assert (
        state.proposals[pid].state is ProposalState.FAILED
        and "block_gas_limit" in state.proposals[pid].failure
    )
    state, _ = passed(state, [Action("grant_reader", {"contract": C, "reader": D})], [A])
    assert state.readers == {C: frozenset({D})}
    state, _ = passed(
        state, [Action("revoke_reader", {"contract": C, "reader": D}), Action("rotate_ledger_secret")], [A]
    )
    assert state.readers == {} and state.ledger_secret_version == 2


def test_validators_need_a_verified_quote_of_approved_code() -> None:
    node = b"\x77" * 20

    def verify_quote(
        quote: bytes, roots: frozenset[bytes], measurements: frozenset[bytes], now: int
    ) -> AttestedNode:
        if quote != b"good quote":
            raise InvalidAction("the quote does not verify")
        return AttestedNode(node, MEASUREMENT)

    env = ActionEnvironment(now=T0, verify_quote=verify_quote)
    add = Action("add_validator", {"quote": b"good quote", "endpoint": "https://node-2:8545"})
    state, pid = propose(consortium(A), A, [add], env)
    state = vote(state, A, pid, True, env)
    assert (
        state.proposals[pid].state is ProposalState.FAILED
        and "approve_measurement" in state.proposals[pid].failure
    )
    state, pid = propose(state, A, [Action("approve_measurement", {"measurement": MEASUREMENT}), add], env)
    state = vote(state, A, pid, True, env)
    assert state.validators[node].measurement == MEASUREMENT
    state, pid = propose(state, A, [Action("revoke_measurement", {"measurement": MEASUREMENT})], env)
    state = vote(state, A, pid, True, env)
    assert "still run it" in state.proposals[pid].failure
