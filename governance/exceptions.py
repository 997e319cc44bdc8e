"""Why governance refuses something. Every one is an `InvalidRequest`: the input can never be
accepted as it is, and the message says what to change.

    GovernanceError
    ├── InvalidConstitution   a constitution breaks its own format
    ├── InvalidAction         an action's arguments, or applying it, break a rule
    ├── NotAMember            only members propose and vote
    ├── UnknownProposal       no proposal has that id
    └── ProposalClosed        the proposal is no longer open
"""

from __future__ import annotations

from evm_runtime.exceptions import InvalidRequest


class GovernanceError(InvalidRequest):
    """A governance request that the rules refuse."""


class InvalidConstitution(GovernanceError):
    pass


class InvalidAction(GovernanceError):
    pass


class NotAMember(GovernanceError):
    pass


class UnknownProposal(GovernanceError):
    pass


class ProposalClosed(GovernanceError):
    pass
