"""Confidential contracts in execution: who a transaction or a read may reach.

The rules (docs/confidentiality.md tells them to users):

- A contract created by a confidential transaction is *confidential*; its creation parties
  (the transaction's sender and `privateFor`, plus the parties of the confidential
  contract that created it, if one did) are written to the parties registry, an account
  whose storage only execution writes (`PARTIES_ADDRESS`).
- A party of a confidential contract is one of its creation parties, or an address its
  own `isParty(address)` view answers true for (asked with `IS_PARTY_GAS`, statically, on
  the state as it is), or, for reads only, an auditor governance granted it to.
- A transaction is confidential if it names `privateFor`, or if it is sent to a
  confidential contract by one of its parties. Only a confidential transaction's sender
  *reaches* confidential contracts, those it is a party of; every other transaction or
  read sees each confidential contract as an empty account: no code, no balance, calls
  to it do nothing and succeed. Moving ether into it, or selfdestructing into it, fails
  the frame that tries ("not found").
- What a confidential transaction writes to public contracts' storage is public, as any
  write; its receipt and logs are the parties' alone (`ExecutedTransaction.private_for`),
  and its logs stay out of the block header's bloom.

`Visibility` is the per-transaction (or per-read) view; `ConclaveState` consults it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum

from eth.abc import StateAPI
from eth.exceptions import VMError
from eth.vm.message import Message
from eth_hash.auto import keccak

from .types import ZERO_ADDRESS, Address

PARTIES_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000c0c1d"))
"""The parties registry: its storage maps each confidential contract to its creation parties."""
IS_PARTY_SELECTOR = keccak(b"isParty(address)")[:4]
IS_PARTY_GAS = 200_000
"""The gas a contract's `isParty` may use; it is not charged to anyone."""
MAX_PARTIES = 64
"""The most creation parties a confidential contract (or `privateFor`) may name."""


def no_readers(contract: Address) -> Collection[Address]:
    """No auditors: what transactions reach with (grants are for reads)."""
    return ()


class HiddenAccount(VMError):
    """A frame tried to move ether into an account it cannot see."""

    def __init__(self) -> None:
        super().__init__("not found")


@functools.lru_cache(maxsize=4096)
def _base_slot(contract: Address) -> int:
    """Where `contract`'s creation parties start in the parties registry's storage."""
    return int.from_bytes(keccak(bytes(12) + contract + bytes(32)), "big")


def creation_parties(state: StateAPI, contract: Address) -> tuple[Address, ...]:
    """The creation parties of `contract`; empty for a public contract."""
    base = _base_slot(contract)
    count = state.get_storage(PARTIES_ADDRESS, base)
    return tuple(
        Address(state.get_storage(PARTIES_ADDRESS, base + 1 + i).to_bytes(20, "big")) for i in range(count)
    )


def is_confidential(state: StateAPI, contract: Address) -> bool:
    return state.get_storage(PARTIES_ADDRESS, _base_slot(contract)) != 0


def register(state: StateAPI, contract: Address, parties: Collection[Address]) -> None:
    """Record `contract` as confidential to `parties` (sorted, so replay writes the same)."""
    base = _base_slot(contract)
    ordered = sorted(set(parties))
    state.set_storage(PARTIES_ADDRESS, base, len(ordered))
    for i, party in enumerate(ordered):
        state.set_storage(PARTIES_ADDRESS, base + 1 + i, int.from_bytes(party, "big"))
    if state.get_nonce(PARTIES_ADDRESS) == 0:  # a non-empty account is never cleared (EIP-161)
        state.set_nonce(PARTIES_ADDRESS, 1)


def ask_is_party(state: StateAPI, contract: Address, who: Address) -> bool:
    """What `contract.isParty(who)` answers on `state` (False if it has no such view or fails);
    nothing it does is kept."""
    code = state.get_code(contract)
    if not code:
        return False
    message = Message(
        gas=IS_PARTY_GAS,
        to=contract,
        sender=ZERO_ADDRESS,
        value=0,
        data=IS_PARTY_SELECTOR + bytes(12) + who,
        code=code,
        is_static=True,
    )
    context = state.get_transaction_context_class()(gas_price=0, origin=ZERO_ADDRESS)
    snapshot = state.snapshot()
    try:
        # The state class's own computation: a tracer set on this state must not see it.
        computation = type(state).computation_class.apply_message(state, message, context)
    finally:
        state.revert(snapshot)
    output = bytes(computation.output)
    return not computation.is_error and len(output) == 32 and int.from_bytes(output, "big") == 1


class Verdict(Enum):
    PUBLIC = "public"
    REACHABLE = "reachable"
    """Confidential, and the actor is one of its parties."""
    HIDDEN = "hidden"


@dataclass
class Visibility:
    """What one transaction or read may reach.

    `actor` is the confidential transaction's sender or the signed-in reader (None: a
    public transaction or an anonymous read, which reach no confidential contract);
    `creators` are the creation parties of contracts the transaction creates (None: it is
    not confidential); `readers` names a contract's auditors (reads only).
    """

    actor: Address | None
    creators: frozenset[Address] | None = None
    readers: Callable[[Address], Collection[Address]] = no_readers
    reached: list[Address] = field(default_factory=list)
    """The confidential contracts this transaction ran or created, in order."""
    _verdicts: dict[Address, Verdict] = field(default_factory=dict)

    def verdict(self, state: StateAPI, address: Address) -> Verdict:
        found = self._verdicts.get(address)
        if found is None:
            with unguarded(state):
                found = self._decide(state, address)
            self._verdicts[address] = found
        return found

    def hides(self, state: StateAPI, address: Address) -> bool:
        return self.verdict(state, address) is Verdict.HIDDEN

    def _decide(self, state: StateAPI, address: Address) -> Verdict:
        if address == PARTIES_ADDRESS:
            return Verdict.HIDDEN
        parties = creation_parties(state, address)
        if not parties:
            return Verdict.PUBLIC
        actor = self.actor
        if actor is not None and (
            actor in parties or actor in self.readers(address) or ask_is_party(state, address, actor)
        ):
            return Verdict.REACHABLE
        return Verdict.HIDDEN

    def note_reached(self, contract: Address) -> None:
        if contract not in self.reached:
            self.reached.append(contract)

    def created(self, state: StateAPI, contract: Address, creator: Address) -> None:
        """`contract` was just created by `creator`: if this transaction is confidential, it
        is confidential to the transaction's creators and, if `creator` is a confidential
        contract, its parties too."""
        if self.creators is None:
            return
        with unguarded(state):
            register(state, contract, self.creators | set(creation_parties(state, creator)))
        self._verdicts[contract] = Verdict.REACHABLE
        self.note_reached(contract)


@dataclass(frozen=True)
class Reader:
    """Who reads: a signed-in address, or no one; and the auditors governance granted."""

    address: Address | None = None
    readers: Callable[[Address], Collection[Address]] = no_readers

    def visibility(self) -> Visibility:
        return Visibility(actor=self.address, readers=self.readers)


ANONYMOUS = Reader()


def transaction_visibility(
    state: StateAPI, sender: Address, to: Address | None, private_for: Sequence[Address] | None
) -> Visibility:
    """The visibility a transaction executes with: confidential if it names `private_for`
    or is sent to a confidential contract by one of its parties. The verdict on `to`,
    decided here, holds for either (a public transaction's actor reaches only what is
    public), so it is kept."""
    visibility = Visibility(actor=sender)
    reaches = to is not None and visibility.verdict(state, to) is Verdict.REACHABLE
    if private_for is None and not reaches:
        public = Visibility(actor=None)
        if to is not None:
            public._verdicts[to] = visibility._verdicts[to]
        return public
    visibility.creators = frozenset((sender, *(private_for or ())))
    return visibility


class unguarded:
    """Run with no visibility on `state` (the system's own reads: registry, isParty)."""

    def __init__(self, state: StateAPI) -> None:
        self._state = state
        self._saved: Visibility | None = None

    def __enter__(self) -> None:
        self._saved = getattr(self._state, "visibility", None)
        self._state.visibility = None  # type: ignore[attr-defined]

    def __exit__(self, *_: object) -> None:
        self._state.visibility = self._saved  # type: ignore[attr-defined]
