"""Proposals and ballots: the governance state machine. Every function takes a state and
returns the next one; nothing else changes, so replaying the same requests in the same
order (as the ledger does) gives the same state.

- Only members propose, vote and withdraw; a proposal holds 1 to `MAX_ACTIONS` actions
  and is open until `created_at + voting_period` (ledger time), after which `expire`
  closes it and no ballot is taken.
- A member has one ballot per proposal and may change it while the proposal is open.
  Ballots count only while their member is a member.
- Resolution runs after every ballot. A proposal needs the highest threshold among its
  actions, counted over the current members. It is **rejected** as soon as a member who
  may veto one of its actions votes no, or its "no" ballots make the threshold
  unreachable; it is **accepted** when its "yes" ballots reach it. Then its actions
  apply in order, all or none: if one cannot, the proposal has **failed** and the state
  is unchanged.
- An accepted constitution change closes every other open proposal (`DROPPED`): they
  were made under other rules.
- The proposer may **withdraw** an open proposal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from evm_runtime.types import Address

from .actions import ActionEnvironment, apply_action, check_action
from .constitution import Threshold
from .exceptions import GovernanceError, InvalidAction, NotAMember, ProposalClosed, UnknownProposal
from .state import Action, GovernanceState, Proposal, ProposalState

MAX_ACTIONS = 32


def votes_needed(threshold: Threshold, members: int) -> int:
    """The fewest "yes" ballots of `members` that reach `threshold`."""
    return next(votes for votes in range(members + 2) if votes > members or threshold.met(votes, members))


def _member(state: GovernanceState, address: Address) -> None:
    if not state.is_member(address):
        raise NotAMember(f"0x{address.hex()} is not a member: only members propose and vote")


def _open(state: GovernanceState, proposal_id: int, now: int) -> Proposal:
    proposal = state.proposals.get(proposal_id)
    if proposal is None:
        raise UnknownProposal(f"no proposal {proposal_id}")
    if proposal.state is not ProposalState.OPEN:
        raise ProposalClosed(f"proposal {proposal_id} is {proposal.state.value}")
    if now >= proposal.closes_at:
        raise ProposalClosed(f"proposal {proposal_id} expired at {proposal.closes_at}")
    return proposal


def propose(
    state: GovernanceState, proposer: Address, actions: Sequence[Action], env: ActionEnvironment
) -> tuple[GovernanceState, int]:
    """Open a proposal of `actions`; the new state and the proposal's id."""
    _member(state, proposer)
    if not 0 < len(actions) <= MAX_ACTIONS:
        raise InvalidAction(f"a proposal holds 1 to {MAX_ACTIONS} actions, not {len(actions)}")
    for action in actions:
        check_action(action)
    proposal_id = max(state.proposals, default=0) + 1
    proposal = Proposal(
        id=proposal_id,
        proposer=proposer,
        actions=tuple(actions),
        created_at=env.now,
        closes_at=env.now + state.constitution.voting_period,
    )
    return state.with_proposal(proposal), proposal_id


def vote(
    state: GovernanceState, member: Address, proposal_id: int, approve: bool, env: ActionEnvironment
) -> GovernanceState:
    """Record `member`'s ballot (replacing an earlier one) and resolve the proposal."""
    _member(state, member)
    proposal = _open(state, proposal_id, env.now)
    proposal = replace(proposal, ballots={**proposal.ballots, member: approve})
    return resolve(state.with_proposal(proposal), proposal_id, env)


def withdraw(
    state: GovernanceState, member: Address, proposal_id: int, env: ActionEnvironment
) -> GovernanceState:
    """The proposer closes an open proposal."""
    _member(state, member)
    proposal = _open(state, proposal_id, env.now)
    if proposal.proposer != member:
        raise GovernanceError(
            f"only its proposer 0x{proposal.proposer.hex()} may withdraw proposal {proposal_id}"
        )
    return state.with_proposal(replace(proposal, state=ProposalState.WITHDRAWN))


def expire(state: GovernanceState, now: int) -> GovernanceState:
    """Close every open proposal whose time is up."""
    for proposal in state.proposals.values():
        if proposal.state is ProposalState.OPEN and now >= proposal.closes_at:
            state = state.with_proposal(replace(proposal, state=ProposalState.EXPIRED))
    return state


def threshold_of(state: GovernanceState, proposal: Proposal) -> int:
    """The "yes" ballots `proposal` needs among the current members."""
    members = len(state.members)
    constitution = state.constitution
    return max(votes_needed(constitution.threshold_for(action.kind), members) for action in proposal.actions)


def resolve(state: GovernanceState, proposal_id: int, env: ActionEnvironment) -> GovernanceState:
    """Accept, reject or leave open proposal `proposal_id` after a ballot."""
    proposal = state.proposals[proposal_id]
    ballots = {member: yes for member, yes in proposal.ballots.items() if state.is_member(member)}
    yes = sum(ballots.values())
    no = len(ballots) - yes
    needed = threshold_of(state, proposal)
    vetoed = any(
        ballots.get(vetoer) is False
        for action in proposal.actions
        for vetoer in state.constitution.vetoers_for(action.kind)
    )
    if vetoed or len(state.members) - no < needed:
        return state.with_proposal(replace(proposal, state=ProposalState.REJECTED))
    if yes < needed:
        return state
    return _enact(state, proposal, env)


def _enact(state: GovernanceState, proposal: Proposal, env: ActionEnvironment) -> GovernanceState:
    changed = state
    try:
        for action in proposal.actions:
            changed = apply_action(changed, action, env)
    except GovernanceError as failure:
        return state.with_proposal(replace(proposal, state=ProposalState.FAILED, failure=str(failure)))
    changed = changed.with_proposal(replace(proposal, state=ProposalState.ACCEPTED))
    if any(action.kind == "set_constitution" for action in proposal.actions):
        for other in changed.proposals.values():
            if other.state is ProposalState.OPEN:
                changed = changed.with_proposal(replace(other, state=ProposalState.DROPPED))
    return changed
