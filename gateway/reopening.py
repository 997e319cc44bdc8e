"""Reopening a recovered network, on the node's side (`governance.reopening`,
docs/recovery.md): the node proposes itself as the network's validator after its head,
gathers the members' approvals, and commits the reopening block once the enclave finds
enough of them.

The proposal is kept while the head stays and its quote is fresh (half its lifetime), so
that every member approves the same bytes; approvals live in memory (a restart asks the
members again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from enclave.attestation import VALIDATOR_QUOTE_MAX_AGE
from evm_runtime.exceptions import InvalidRequest, NotPermitted
from evm_runtime.types import Address
from governance.exceptions import InvalidAction
from governance.reopening import ApprovedReopening, NewValidator, Reopening, TooFewApprovals, approver
from ledger.store import BlockRecord

if TYPE_CHECKING:
    from .node import Node

PROPOSAL_LIFETIME = VALIDATOR_QUOTE_MAX_AGE // 2
"""Seconds a proposed reopening is kept: its quote must still be fresh when the block is made."""


@dataclass
class Proposed:
    reopening: Reopening
    made_at: float
    approvals: dict[Address, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Approval:
    """What an approval led to: the reopening block, or why it is not made yet."""

    proposed: Proposed
    block: BlockRecord | None
    problem: str | None


class Reopenings:
    """This node's proposed reopening and the approvals it gathered."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._proposed: Proposed | None = None

    def current(self) -> Proposed:
        """The reopening members approve now; NotPermitted if there is nothing to reopen."""
        node = self._node
        if node.address in node.ordering.validators:
            raise NotPermitted("this node orders blocks: the network is open, nothing to reopen")
        if node.config.p2p_listen is None:
            raise NotPermitted("this node has no [p2p] endpoint: configure one, so that validators reach it")
        head = node.store.head()
        assert head is not None, "a running node has a genesis block"
        proposed = self._proposed
        if (
            proposed is None
            or proposed.reopening.parent_hash != head.hash
            or time.time() - proposed.made_at > PROPOSAL_LIFETIME
        ):
            host, port = node.config.p2p_listen
            validator = NewValidator(node.enclave.quote(b""), f"{host}:{port}")
            reopening = Reopening(node.params.chain_id, head.number, head.hash, (validator,))
            proposed = self._proposed = Proposed(reopening, time.time())
        return proposed

    def approve(self, encoded: bytes, signature: bytes) -> Approval:
        """Take a member's approval of the current reopening; commit the reopening block if
        the approvals gathered are enough (InvalidRequest for a stale reopening, a bad
        signature or one that is not a member's)."""
        proposed = self.current()
        if encoded != proposed.reopening.encode():
            raise InvalidRequest(
                "this is not the reopening the node proposes now (its head or quote changed): "
                "fetch it again and approve that one"
            )
        signer = approver(proposed.reopening, signature)
        proposed.approvals[signer] = signature
        approvals = tuple(proposed.approvals[member] for member in sorted(proposed.approvals))
        record = ApprovedReopening(proposed.reopening, approvals).encode()
        node = self._node
        try:
            block = node.ordering.reopen(lambda timestamp: node.enclave.reopen(record, timestamp))
        except TooFewApprovals as missing:
            return Approval(proposed, None, str(missing))
        except InvalidAction:
            del proposed.approvals[signer]
            raise
        self._proposed = None
        return Approval(proposed, block, None)
