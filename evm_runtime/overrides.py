"""State overrides: accounts replaced for one call or simulation, never stored.

geth's third parameter of eth_call and eth_estimateGas, and each simulated block's
`stateOverrides` in eth_simulateV1. An override names an account and replaces parts of it:

- `move_precompile_to`: the precompile at the account's address answers at that address
  instead, and the account's own address becomes an ordinary account;
- `balance`, `nonce`, `code`: replaced (a code override on a precompile's address replaces
  the precompile too);
- `state`: all of the account's storage replaced by the given slots; `state_diff`: only the
  given slots set. An override has at most one of the two.

A precompile moves only to an address that is not itself overridden, never to its own,
and two precompiles never move to the same address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eth.abc import StateAPI

from .exceptions import InvalidRequest, PrecompileMovedToItself, PrecompileMovedTwice
from .system_contracts import INSTALLED as SYSTEM_CONTRACTS
from .types import Address

MAX_UINT256 = 2**256 - 1
MAX_NONCE = 2**64 - 1

Storage = tuple[tuple[int, int], ...]
"""(slot, value) pairs, both 32-byte words as integers."""


@dataclass(frozen=True, slots=True)
class AccountOverride:
    """What replaces one account's fields; None leaves a field as it is."""

    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: Storage | None = None
    state_diff: Storage | None = None
    move_precompile_to: Address | None = None


@dataclass(frozen=True, slots=True)
class StateOverrides:
    """Account overrides, applied in order (each address at most once)."""

    accounts: tuple[tuple[Address, AccountOverride], ...] = ()


NO_OVERRIDES = StateOverrides()

Precompiles = Mapping[Address, Callable[..., Any]]


def _hex(address: bytes) -> str:
    return "0x" + address.hex()


def _check_account(address: Address, account: AccountOverride) -> None:
    if len(address) != 20:
        raise InvalidRequest(f"an overridden address has 20 bytes, got {len(address)}")
    if account.state is not None and account.state_diff is not None:
        raise InvalidRequest(f"account {_hex(address)}: give state or stateDiff, not both")
    if account.balance is not None and not 0 <= account.balance <= MAX_UINT256:
        raise InvalidRequest(f"account {_hex(address)}: a balance is from 0 to 2^256 - 1 wei")
    if account.nonce is not None and not 0 <= account.nonce <= MAX_NONCE:
        raise InvalidRequest(f"account {_hex(address)}: a nonce is from 0 to 2^64 - 1")
    for slot, value in (account.state or ()) + (account.state_diff or ()):
        if not (0 <= slot <= MAX_UINT256 and 0 <= value <= MAX_UINT256):
            raise InvalidRequest(f"account {_hex(address)}: storage slots and values are 32-byte words")
    destination = account.move_precompile_to
    if destination is not None and len(destination) != 20:
        raise InvalidRequest(f"account {_hex(address)}: movePrecompileToAddress needs a 20-byte address")


def check_overrides(overrides: StateOverrides, precompiles: Precompiles) -> None:
    """Raise InvalidRequest (or a subclass) for overrides that cannot be applied."""
    overridden = [address for address, _ in overrides.accounts]
    if len(set(overridden)) != len(overridden):
        raise InvalidRequest("an account is overridden twice: give each address once")
    destinations: set[Address] = set()
    for address, account in overrides.accounts:
        _check_account(address, account)
        destination = account.move_precompile_to
        if destination is None:
            continue
        if address not in precompiles:
            raise InvalidRequest(f"account {_hex(address)} is not a precompile: only precompiles move")
        if address in SYSTEM_CONTRACTS:
            raise InvalidRequest(f"{_hex(address)} is a system contract: it does not move")
        if destination == address:
            raise PrecompileMovedToItself(f"the precompile {_hex(address)} is moved to its own address")
        if destination in destinations:
            raise PrecompileMovedTwice(f"two precompiles are moved to {_hex(destination)}")
        if destination in overridden:
            raise InvalidRequest(
                f"the precompile {_hex(address)} is moved to {_hex(destination)}, which is overridden "
                "too: move it to an address that is not"
            )
        destinations.add(destination)


def moved_precompiles(overrides: StateOverrides, precompiles: Precompiles) -> dict[Address, Any]:
    """The precompiles once `overrides` moved or replaced some (`precompiles` if none did)."""
    result = dict(precompiles)
    for address, account in overrides.accounts:
        if account.move_precompile_to is not None or account.code is not None:
            result.pop(address, None)
    for address, account in overrides.accounts:
        if account.move_precompile_to is not None:
            result[account.move_precompile_to] = precompiles[address]
    return result


def apply_overrides(state: StateAPI, overrides: StateOverrides) -> None:
    """Apply `overrides` to `state`; a precompile move changes the precompiles `state` runs."""
    if not overrides.accounts:
        return
    base = state.computation_class
    precompiles = base.get_precompiles()
    check_overrides(overrides, precompiles)
    for address, account in overrides.accounts:
        if account.balance is not None:
            state.set_balance(address, account.balance)
        if account.nonce is not None:
            state.set_nonce(address, account.nonce)
        if account.code is not None:
            state.set_code(address, account.code)
        if account.state is not None:
            state.delete_storage(address)
        slots = account.state if account.state is not None else account.state_diff
        for slot, value in slots or ():
            state.set_storage(address, slot, value)
    moved = moved_precompiles(overrides, precompiles)
    if moved != precompiles:
        # The state's own class attribute stays as it is: only this state runs them.
        state.computation_class = type(f"Overridden{base.__name__}", (base,), {"_precompiles": moved})  # type: ignore[misc]
