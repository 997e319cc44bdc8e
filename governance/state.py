"""What the consortium has decided: the governance state, as plain immutable data.

Members govern; users may send transactions when submission is permissioned, and
deployers may create contracts when deployment is; validators order blocks and run an
approved enclave measurement; readers are granted read access to confidential contracts
(auditors). The network configuration holds the values members may change by vote.
Proposals (`governance.proposals`) are part of the state, so replaying the same ledger
gives the same state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from types import MappingProxyType

from evm_runtime.types import Address

from .constitution import Constitution, default_constitution
from .exceptions import InvalidAction

MAX_GAS_LIMIT = 1_000_000_000
MIN_GAS_LIMIT = 21_000
"""A plain transfer's gas: the least a block can hold."""
MAX_RECOVERY_THRESHOLD = 255
"""Shamir shares are numbered by one byte (docs/recovery.md)."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    metadata: str = ""
    # -- disaster recovery (docs/recovery.md) --
    recovery_key: bytes = b""
    """The member's own account public key (compressed, 33 bytes), which its recovery share is
    encrypted to; empty until the member registers it (`setRecoveryKey`)."""


@dataclass(frozen=True, slots=True)
class Validator:
    endpoint: str
    measurement: bytes


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """The network values members may change with `set_config`."""

    block_gas_limit: int = 30_000_000
    min_gas_price: int = 0
    """Wei: the least fee cap a transaction may offer."""
    free_gas: bool = False
    """Blocks have a base fee of zero, so transactions offering no fee pay nothing."""
    block_time_ms: int = 0
    """The least time between blocks; 0: seal as soon as transactions wait."""
    open_submission: bool = True
    """False: only users may send transactions."""
    open_deployment: bool = True
    """False: only deployers may create contracts."""
    max_request_bytes: int = 5 * 2**20
    # -- disaster recovery (docs/recovery.md) --
    recovery_threshold: int = 0
    """How many members' recovery shares restore the ledger secrets; 0: a majority of the members."""

    def __post_init__(self) -> None:
        checks = (
            (
                MIN_GAS_LIMIT <= self.block_gas_limit <= MAX_GAS_LIMIT,
                f"block_gas_limit is from {MIN_GAS_LIMIT} to {MAX_GAS_LIMIT}",
            ),
            (0 <= self.min_gas_price < 2**256, "min_gas_price is from 0 to 2^256 - 1 wei"),
            (0 <= self.block_time_ms <= 60_000, "block_time_ms is from 0 to 60000"),
            (2**10 <= self.max_request_bytes <= 2**30, "max_request_bytes is from 1 KiB to 1 GiB"),
            (0 <= self.recovery_threshold <= MAX_RECOVERY_THRESHOLD, "recovery_threshold is from 0 to 255"),
        )
        for ok, rule in checks:
            if not ok:
                raise InvalidAction(rule)


CONFIG_KEYS: Mapping[str, type] = MappingProxyType({f.name: type(f.default) for f in fields(NetworkConfig)})
"""The values `set_config` may change, and their types (int or bool)."""


class ProposalState(Enum):
    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    FAILED = "failed"
    """Accepted, but an action could not be applied: nothing of it was."""
    DROPPED = "dropped"
    """Still open when the constitution changed: decided under other rules, so closed."""


@dataclass(frozen=True, slots=True)
class Action:
    """One change a proposal asks for: an action kind of `governance.actions` and its arguments."""

    kind: str
    args: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", MappingProxyType(dict(self.args)))


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    proposer: Address
    actions: tuple[Action, ...]
    created_at: int
    closes_at: int
    state: ProposalState = ProposalState.OPEN
    ballots: Mapping[Address, bool] = field(default_factory=lambda: MappingProxyType({}))
    """Each member's current vote: True for yes, False for no."""
    failure: str = ""
    """Why applying it failed (FAILED only)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ballots", MappingProxyType(dict(self.ballots)))


@dataclass(frozen=True, slots=True)
class GovernanceState:
    members: Mapping[Address, Member]
    constitution: Constitution = field(default_factory=default_constitution)
    users: frozenset[Address] = frozenset()
    deployers: frozenset[Address] = frozenset()
    validators: Mapping[Address, Validator] = field(default_factory=lambda: MappingProxyType({}))
    measurements: frozenset[bytes] = frozenset()
    """Enclave measurements the members approved: validators must run one of them."""
    attestation_roots: frozenset[bytes] = frozenset()
    """The attestation roots validators' quotes must chain to (the platform vendors')."""
    readers: Mapping[Address, frozenset[Address]] = field(default_factory=lambda: MappingProxyType({}))
    """Per confidential contract: the auditors granted read access to it."""
    config: NetworkConfig = field(default_factory=NetworkConfig)
    ledger_secret_version: int = 1
    proposals: Mapping[int, Proposal] = field(default_factory=lambda: MappingProxyType({}))
    signature_nonces: Mapping[Address, int] = field(default_factory=lambda: MappingProxyType({}))
    """Per member: how many signed messages (`governance.signed`) it has had applied."""

    def __post_init__(self) -> None:
        if not self.members:
            raise InvalidAction("a consortium has at least one member")
        for name in ("members", "validators", "readers", "proposals", "signature_nonces"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def is_member(self, address: Address) -> bool:
        return address in self.members

    def may_send(self, address: Address) -> bool:
        """Whether `address` may send transactions: anyone on an open network, else users,
        members (who must always reach governance) and validators (who relay members'
        signed messages)."""
        return (
            self.config.open_submission
            or address in self.users
            or address in self.members
            or address in self.validators
        )

    def may_deploy(self, address: Address) -> bool:
        """Whether `address` may create contracts."""
        return self.may_send(address) and (self.config.open_deployment or address in self.deployers)

    @property
    def recovery_threshold(self) -> int:
        """How many members restore the ledger secrets or reopen a recovered network: the
        configured `recovery_threshold`, or a majority of the members when it is 0."""
        return self.config.recovery_threshold or len(self.members) // 2 + 1

    def signature_nonce(self, member: Address) -> int:
        """The nonce `member`'s next signed message must carry."""
        return self.signature_nonces.get(member, 0)

    def with_proposal(self, proposal: Proposal) -> GovernanceState:
        return replace(self, proposals={**self.proposals, proposal.id: proposal})
