"""Property tests of the governance state machine: random sequences of proposals, ballots,
withdrawals and time never accept a proposal below the constitution's threshold, and
replaying the same requests gives the same state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from governance.actions import ActionEnvironment
from governance.constitution import MAJORITY, TWO_THIRDS, Constitution
from governance.exceptions import GovernanceError
from governance.proposals import expire, propose, threshold_of, vote, withdraw
from governance.state import Action, GovernanceState, Member, ProposalState

PEOPLE = [bytes([n]) * 20 for n in range(1, 7)]
FOUNDERS = PEOPLE[:3]
T0 = 1_000_000
PERIOD = 600

people = st.sampled_from(PEOPLE)
actions = st.one_of(
    st.builds(lambda who: Action("add_user", {"address": who}), people),
    st.builds(lambda who: Action("remove_user", {"address": who}), people),
    st.builds(lambda who: Action("add_member", {"address": who, "name": "m"}), people),
    st.builds(lambda who: Action("remove_member", {"address": who}), people),
    st.builds(
        lambda strict: Action(
            "set_constitution",
            {
                "constitution": Constitution(
                    default_threshold=MAJORITY if strict else TWO_THIRDS, voting_period=PERIOD
                )
            },
        ),
        st.booleans(),
    ),
)


@dataclass(frozen=True)
class Request:
    kind: str
    args: tuple[Any, ...]
    now: int


def apply(state: GovernanceState, request: Request) -> GovernanceState:
    env = ActionEnvironment(now=request.now)
    state = expire(state, request.now)
    if request.kind == "propose":
        return propose(state, request.args[0], request.args[1], env)[0]
    if request.kind == "vote":
        return vote(state, *request.args, env)
    return withdraw(state, *request.args, env)


def genesis() -> GovernanceState:
    return GovernanceState(
        members={m: Member("founder") for m in FOUNDERS},
        constitution=Constitution(thresholds={"set_constitution": TWO_THIRDS}, voting_period=PERIOD),
    )


class Governance(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = genesis()
        self.now = T0
        self.accepted: list[Request] = []

    def _send(self, request: Request) -> None:
        before = expire(self.state, request.now)
        try:
            after = apply(self.state, request)
        except GovernanceError:
            return  # refused: nothing changes, as a reverted transaction
        for pid, proposal in after.proposals.items():
            was = before.proposals.get(pid)
            if proposal.state is ProposalState.ACCEPTED and (
                was is None or was.state is not ProposalState.ACCEPTED
            ):
                self._check_acceptance(before, after, pid)
        self.state = after
        self.accepted.append(request)

    def _check_acceptance(self, before: GovernanceState, after: GovernanceState, pid: int) -> None:
        """The yes ballots of members, when the proposal was accepted, reached its threshold."""
        proposal = after.proposals[pid]
        yes = sum(1 for member, approve in proposal.ballots.items() if approve and before.is_member(member))
        assert yes >= threshold_of(before, proposal), (yes, proposal)
        assert self.now < proposal.closes_at

    @rule(proposer=people, chosen=st.lists(actions, min_size=1, max_size=3))
    def make_proposal(self, proposer: bytes, chosen: list[Action]) -> None:
        self._send(Request("propose", (proposer, tuple(chosen)), self.now))

    @rule(pick=st.integers(0, 5), chosen=st.lists(actions, min_size=1, max_size=2))
    def a_member_proposes(self, pick: int, chosen: list[Action]) -> None:
        members = sorted(self.state.members)
        self._send(Request("propose", (members[pick % len(members)], tuple(chosen)), self.now))

    def _recent(self, index: int) -> int:
        """One of the latest proposals' ids (or one that does not exist yet)."""
        return max(len(self.state.proposals) - index, 1)

    @rule(voter=people, index=st.integers(0, 3), approve=st.booleans())
    def cast(self, voter: bytes, index: int, approve: bool) -> None:
        self._send(Request("vote", (voter, self._recent(index), approve), self.now))

    @rule(pick=st.integers(0, 5), index=st.integers(0, 2))
    def a_member_approves(self, pick: int, index: int) -> None:
        members = sorted(self.state.members)
        self._send(Request("vote", (members[pick % len(members)], self._recent(index), True), self.now))

    @rule(member=people, index=st.integers(0, 3))
    def take_back(self, member: bytes, index: int) -> None:
        self._send(Request("withdraw", (member, self._recent(index)), self.now))

    @rule(seconds=st.integers(1, PERIOD // 3))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    @invariant()
    def always_a_member_and_closed_proposals_stay_closed(self) -> None:
        assert self.state.members
        for proposal in self.state.proposals.values():
            if proposal.state is ProposalState.OPEN:
                assert proposal.created_at <= self.now

    def teardown(self) -> None:
        replayed = genesis()
        for request in self.accepted:
            replayed = apply(replayed, request)
        assert replayed == expire(self.state, self.accepted[-1].now) if self.accepted else True


TestGovernance = Governance.TestCase
TestGovernance.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
