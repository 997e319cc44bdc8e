"""The constitution: the consortium's rules for deciding, held in the ledger as data.

- Each action kind needs a share of the members' votes to be accepted (`Threshold`):
  "more than" a fraction (a strict majority is more than 1/2) or "at least" one (two
  thirds is at least 2/3), counted over the members when the ballot is counted.
- A proposal needs the highest threshold among its actions.
- An action kind may name members whose "no" vetoes any proposal holding it.
- A proposal stays open `voting_period` seconds (ledger time) after it is made.
- The consortium's terms: its name and the hash of the legal text that governs it.

Being data, every node evaluates a constitution identically; changing it is an action
(`set_constitution`) that needs `constitution_threshold` (two thirds by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from evm_runtime.types import Address, Hash32

from .exceptions import InvalidConstitution

MIN_VOTING_PERIOD = 60
MAX_VOTING_PERIOD = 365 * 24 * 3600
DEFAULT_VOTING_PERIOD = 7 * 24 * 3600
MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Threshold:
    """The share of members whose "yes" accepts: more than, or at least, num/den."""

    numerator: int
    denominator: int
    strict: bool = True
    """True: more than the fraction; False: at least the fraction."""

    def __post_init__(self) -> None:
        if not (0 <= self.numerator <= self.denominator and self.denominator > 0):
            raise InvalidConstitution(
                f"a threshold is a fraction from 0 to 1, not {self.numerator}/{self.denominator}"
            )
        if self.strict and self.numerator == self.denominator:
            raise InvalidConstitution("more than all members can never vote yes")
        if not self.strict and self.numerator == 0:
            raise InvalidConstitution("a threshold needs at least one vote: use more than 0")

    def met(self, votes: int, members: int) -> bool:
        """Whether `votes` of `members` reach the threshold."""
        if self.strict:
            return votes * self.denominator > self.numerator * members
        return votes * self.denominator >= self.numerator * members

    def describe(self) -> str:
        return f"{'more than' if self.strict else 'at least'} {self.numerator}/{self.denominator}"


MAJORITY = Threshold(1, 2, strict=True)
TWO_THIRDS = Threshold(2, 3, strict=False)
UNANIMITY = Threshold(1, 1, strict=False)


@dataclass(frozen=True, slots=True)
class Constitution:
    """The rules in force; `version` goes up by one with every accepted change."""

    version: int = 1
    name: str = "Conclave consortium"
    terms_hash: Hash32 = Hash32(b"\x00" * 32)
    """keccak-256 of the legal text the members agreed to (zero: none given)."""
    default_threshold: Threshold = MAJORITY
    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: MappingProxyType({}))
    """Per action kind; kinds not named need `default_threshold`."""
    vetoes: Mapping[str, frozenset[Address]] = field(default_factory=lambda: MappingProxyType({}))
    """Per action kind: members whose "no" rejects a proposal holding that kind."""
    voting_period: int = DEFAULT_VOTING_PERIOD

    def __post_init__(self) -> None:
        if self.version < 1:
            raise InvalidConstitution(f"a constitution's version starts at 1, not {self.version}")
        if not 0 < len(self.name) <= MAX_NAME_LENGTH:
            raise InvalidConstitution(f"the consortium's name has 1 to {MAX_NAME_LENGTH} characters")
        if len(self.terms_hash) != 32:
            raise InvalidConstitution("the terms hash has 32 bytes")
        if not MIN_VOTING_PERIOD <= self.voting_period <= MAX_VOTING_PERIOD:
            raise InvalidConstitution(
                f"the voting period is from {MIN_VOTING_PERIOD} to {MAX_VOTING_PERIOD} seconds, "
                f"not {self.voting_period}"
            )
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))
        object.__setattr__(
            self, "vetoes", MappingProxyType({kind: frozenset(who) for kind, who in self.vetoes.items()})
        )

    def threshold_for(self, kind: str) -> Threshold:
        return self.thresholds.get(kind, self.default_threshold)

    def vetoers_for(self, kind: str) -> frozenset[Address]:
        return self.vetoes.get(kind, frozenset())


def default_constitution(name: str = "Conclave consortium") -> Constitution:
    """More than half for most actions; two thirds to change the members or the constitution."""
    return Constitution(
        name=name,
        thresholds={
            "add_member": TWO_THIRDS,
            "remove_member": TWO_THIRDS,
            "set_constitution": TWO_THIRDS,
        },
    )
