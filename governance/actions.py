"""The actions an accepted proposal applies, as a registry: each checks its arguments and
returns the state it leads to, or raises `InvalidAction` saying what is wrong.

- `add_member(address, name, metadata="")`, `remove_member(address)`: never the last member.
- `add_user(address, deploy=False)`, `remove_user(address)`: who may send transactions
  (and create contracts, with `deploy`) when the network is permissioned.
- `add_validator(quote, endpoint)`: the quote must verify (the environment's
  `verify_quote`, the enclave's attestation check, at ledger time) against the state's
  attestation roots and name an approved measurement;
  `remove_validator(address)`: never the last validator.
- `approve_measurement(measurement)`, `revoke_measurement(measurement)`: the enclave code
  validators may run; a measurement a validator still runs cannot be revoked.
- `set_config(key, value)`: one `NetworkConfig` value.
- `set_constitution(constitution)`: its version becomes the current one plus one.
- `grant_reader(contract, reader)`, `revoke_reader(contract, reader)`: an auditor's read
  access to a confidential contract.
- `rotate_ledger_secret()`: new confidential data is sealed with a new ledger secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from evm_runtime.exceptions import ConclaveError
from evm_runtime.types import Address

from .constitution import Constitution
from .exceptions import InvalidAction
from .state import CONFIG_KEYS, Action, GovernanceState, Member, NetworkConfig, Validator

MEASUREMENT_BYTES = 32
MAX_TEXT = 1_000


@dataclass(frozen=True, slots=True)
class AttestedNode:
    """What a verified quote proves: the node's address and the code it runs."""

    address: Address
    measurement: bytes


QuoteVerifier = Callable[[bytes, frozenset[bytes], frozenset[bytes], int], AttestedNode]
"""`(quote, attestation roots, approved measurements, now)` -> what the quote proves; raises
InvalidRequest (or another ConclaveError) if it does not verify (the enclave's check)."""


@dataclass(frozen=True, slots=True)
class ActionEnvironment:
    """What applying actions may consult beyond the state."""

    now: int
    verify_quote: QuoteVerifier | None = None


Apply = Callable[[GovernanceState, Mapping[str, Any], ActionEnvironment], GovernanceState]
ACTIONS: dict[str, Apply] = {}


def action(kind: str) -> Callable[[Apply], Apply]:
    def register(apply: Apply) -> Apply:
        ACTIONS[kind] = apply
        return apply

    return register


def apply_action(state: GovernanceState, change: Action, env: ActionEnvironment) -> GovernanceState:
    """The state after `change`; raises InvalidAction if it cannot apply to `state`."""
    apply = ACTIONS.get(change.kind)
    if apply is None:
        raise InvalidAction(f"unknown action {change.kind!r}; known: {', '.join(sorted(ACTIONS))}")
    return apply(state, change.args, env)


def check_action(change: Action) -> None:
    """Raise InvalidAction if `change` names no action or misses an argument it needs."""
    if change.kind not in ACTIONS:
        raise InvalidAction(f"unknown action {change.kind!r}; known: {', '.join(sorted(ACTIONS))}")
    needed = REQUIRED_ARGS.get(change.kind, ())
    missing = [name for name in needed if name not in change.args]
    if missing:
        raise InvalidAction(f"{change.kind} needs {', '.join(missing)}")


# -- argument readers ---------------------------------------------------------------------


def _address(args: Mapping[str, Any], name: str) -> Address:
    value = args.get(name)
    if not isinstance(value, bytes) or len(value) != 20:
        raise InvalidAction(f"{name} must be a 20-byte address")
    return Address(value)


def _text(args: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = args.get(name, default)
    if not isinstance(value, str) or len(value) > MAX_TEXT or (default is None and not value):
        raise InvalidAction(f"{name} must be text of at most {MAX_TEXT} characters")
    return value


def _measurement(args: Mapping[str, Any]) -> bytes:
    value = args.get("measurement")
    if not isinstance(value, bytes) or len(value) != MEASUREMENT_BYTES:
        raise InvalidAction(f"measurement must have {MEASUREMENT_BYTES} bytes")
    return value


def _flag(args: Mapping[str, Any], name: str) -> bool:
    value = args.get(name, OPTIONAL_ARGS.get(name, False))
    if not isinstance(value, bool):
        raise InvalidAction(f"{name} must be true or false")
    return value


OPTIONAL_ARGS: dict[str, object] = {"metadata": "", "deploy": False}
"""Arguments an action may leave out, and what they then are."""

REQUIRED_ARGS: dict[str, tuple[str, ...]] = {
    "add_member": ("address", "name"),
    "remove_member": ("address",),
    "add_user": ("address",),
    "remove_user": ("address",),
    "add_validator": ("quote", "endpoint"),
    "remove_validator": ("address",),
    "approve_measurement": ("measurement",),
    "revoke_measurement": ("measurement",),
    "set_config": ("key", "value"),
    "set_constitution": ("constitution",),
    "grant_reader": ("contract", "reader"),
    "revoke_reader": ("contract", "reader"),
}


# -- members, users -----------------------------------------------------------------------


@action("add_member")
def add_member(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    address = _address(args, "address")
    if state.is_member(address):
        raise InvalidAction(f"0x{address.hex()} is already a member")
    member = Member(_text(args, "name"), _text(args, "metadata", default=str(OPTIONAL_ARGS["metadata"])))
    return replace(state, members={**state.members, address: member})


@action("remove_member")
def remove_member(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    address = _address(args, "address")
    if not state.is_member(address):
        raise InvalidAction(f"0x{address.hex()} is not a member")
    if len(state.members) == 1:
        raise InvalidAction("the last member cannot be removed: add another member first")
    return replace(state, members={k: v for k, v in state.members.items() if k != address})


@action("add_user")
def add_user(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    address = _address(args, "address")
    deployers = state.deployers | {address} if _flag(args, "deploy") else state.deployers
    return replace(state, users=state.users | {address}, deployers=deployers)


@action("remove_user")
def remove_user(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    address = _address(args, "address")
    if address not in state.users:
        raise InvalidAction(f"0x{address.hex()} is not a user")
    return replace(state, users=state.users - {address}, deployers=state.deployers - {address})


# -- validators and code ------------------------------------------------------------------


@action("add_validator")
def add_validator(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    quote = args.get("quote")
    if not isinstance(quote, bytes) or not quote:
        raise InvalidAction("quote must be the validator's attestation quote (bytes)")
    if env.verify_quote is None:
        raise InvalidAction("this node cannot verify quotes, so it cannot add validators")
    try:
        attested = env.verify_quote(quote, state.attestation_roots, state.measurements, env.now)
    except ConclaveError as refused:
        raise InvalidAction(f"the validator's quote does not verify: {refused}") from None
    if attested.measurement not in state.measurements:
        raise InvalidAction(
            f"the validator runs enclave code 0x{attested.measurement.hex()}, which the members "
            "have not approved: approve_measurement first"
        )
    validator = Validator(_text(args, "endpoint"), attested.measurement)
    return replace(state, validators={**state.validators, attested.address: validator})


@action("remove_validator")
def remove_validator(
    state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment
) -> GovernanceState:
    address = _address(args, "address")
    if address not in state.validators:
        raise InvalidAction(f"0x{address.hex()} is not a validator")
    if len(state.validators) == 1:
        raise InvalidAction("the last validator cannot be removed: no one would order blocks")
    return replace(state, validators={k: v for k, v in state.validators.items() if k != address})


@action("approve_measurement")
def approve_measurement(
    state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment
) -> GovernanceState:
    return replace(state, measurements=state.measurements | {_measurement(args)})


@action("revoke_measurement")
def revoke_measurement(
    state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment
) -> GovernanceState:
    measurement = _measurement(args)
    if measurement not in state.measurements:
        raise InvalidAction(f"measurement 0x{measurement.hex()} is not approved")
    running = [address for address, v in state.validators.items() if v.measurement == measurement]
    if running:
        names = ", ".join(f"0x{address.hex()}" for address in running)
        raise InvalidAction(f"validators {names} still run it: remove or upgrade them first")
    return replace(state, measurements=state.measurements - {measurement})


# -- configuration and the constitution ---------------------------------------------------


@action("set_config")
def set_config(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    key, value = args.get("key"), args.get("value")
    if key not in CONFIG_KEYS:
        raise InvalidAction(f"unknown configuration key {key!r}; known: {', '.join(CONFIG_KEYS)}")
    wanted = CONFIG_KEYS[key]
    if type(value) is not wanted:
        raise InvalidAction(f"{key} takes {'true or false' if wanted is bool else 'a whole number'}")
    config: NetworkConfig = replace(state.config, **{str(key): value})
    return replace(state, config=config)


@action("set_constitution")
def set_constitution(
    state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment
) -> GovernanceState:
    proposed = args.get("constitution")
    if not isinstance(proposed, Constitution):
        raise InvalidAction("constitution must be a constitution document")
    unknown = sorted((set(proposed.thresholds) | set(proposed.vetoes)) - set(ACTIONS))
    if unknown:
        raise InvalidAction(f"the constitution names unknown actions: {', '.join(unknown)}")
    return replace(state, constitution=replace(proposed, version=state.constitution.version + 1))


# -- confidentiality ----------------------------------------------------------------------


@action("grant_reader")
def grant_reader(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    contract, reader = _address(args, "contract"), _address(args, "reader")
    granted = state.readers.get(contract, frozenset()) | {reader}
    return replace(state, readers={**state.readers, contract: granted})


@action("revoke_reader")
def revoke_reader(state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment) -> GovernanceState:
    contract, reader = _address(args, "contract"), _address(args, "reader")
    granted = state.readers.get(contract, frozenset())
    if reader not in granted:
        raise InvalidAction(f"0x{reader.hex()} has no read access to 0x{contract.hex()}")
    readers = {**state.readers, contract: granted - {reader}}
    return replace(state, readers={k: v for k, v in readers.items() if v})


@action("rotate_ledger_secret")
def rotate_ledger_secret(
    state: GovernanceState, args: Mapping[str, Any], env: ActionEnvironment
) -> GovernanceState:
    return replace(state, ledger_secret_version=state.ledger_secret_version + 1)
