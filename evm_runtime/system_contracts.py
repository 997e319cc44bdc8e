"""System contracts: Python handlers at fixed addresses that transactions and calls reach
like any contract. Execution defines the hook; a higher layer plugs its contract in with
`install` (governance does, so `evm_runtime` never imports it).

- A call to the address runs `SystemContract.call` with plain data (`SystemCall`) and a
  `SystemStore`; its `SystemOutcome` says the output, the gas it costs, the logs it emits
  and whether it reverts (then nothing it saved is kept, as with any revert).
- The store is one blob per contract, addressed by content: its keccak hash sits in the
  contract's storage slot 0 and the blob beside the chain's state nodes, so the state
  root commits to it and replaying a block rebuilds it.
- Saving in a static call fails (write protection); so does reaching the contract
  through DELEGATECALL or CALLCODE, whose storage would be another account's.
- `SystemContract.refusal` lets a contract refuse transactions before they run: the block
  builder drops those, and admission refuses them (`refusal_of`).
- `SystemContract.block_rules` lets a contract set the next block's gas limit and make gas
  free (base fee zero), read from the parent's state, so a replay derives the same header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from eth.abc import ComputationAPI, StateAPI
from eth.exceptions import OutOfGas, Revert, WriteProtection
from eth_hash.auto import keccak

from .chain import ConclaveComputation
from .types import Address

BLOB_SLOT = 0


@dataclass(frozen=True, slots=True)
class SystemCall:
    sender: Address
    value: int
    data: bytes
    timestamp: int
    block_number: int
    chain_id: int
    static: bool


@dataclass(frozen=True, slots=True)
class SystemLog:
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class SystemOutcome:
    output: bytes = b""
    gas: int = 0
    logs: tuple[SystemLog, ...] = ()
    reverted: bool = False


@dataclass(frozen=True, slots=True)
class BlockRules:
    """What a system contract decides of the next block: its gas limit (None: the chain's),
    and whether gas is free (a base fee of zero)."""

    gas_limit: int | None = None
    free_gas: bool = False


NO_RULES = BlockRules()


class SystemStore(Protocol):
    def load(self) -> bytes | None:
        """The contract's blob; None before anything was saved."""

    def save(self, blob: bytes) -> None: ...


class SystemContract(Protocol):
    address: Address

    def call(self, call: SystemCall, store: SystemStore) -> SystemOutcome: ...

    def refusal(self, sender: Address, creates: bool, store: SystemStore) -> str | None:
        """Why a transaction from `sender` (creating a contract or not) must not run, or None."""

    def block_rules(self, store: SystemStore) -> BlockRules | None:
        """The rules of the block built on this state, if the contract sets them."""


class StateStore:
    """A system contract's blob in a py-evm state."""

    def __init__(self, state: StateAPI, address: Address, static: bool = False) -> None:
        self._state = state
        self._address = address
        self._static = static
        self._loaded: bytes | None = None

    def _nodes(self) -> dict[bytes, bytes]:
        # The account database's raw store: the chain's state nodes, where the blob lives.
        return self._state._account_db._raw_store_db  # type: ignore[attr-defined, no-any-return]

    def load(self) -> bytes | None:
        """The blob (read once by a static store: nothing can change it under one)."""
        if self._loaded is not None:
            return self._loaded
        digest = self._state.get_storage(self._address, BLOB_SLOT)
        if not digest:
            return None
        blob = bytes(self._nodes()[digest.to_bytes(32, "big")])
        if self._static:
            self._loaded = blob
        return blob

    def save(self, blob: bytes) -> None:
        if self._static:
            raise WriteProtection("a system contract cannot change state in a static call")
        digest = keccak(blob)
        self._nodes()[digest] = blob
        self._state.set_storage(self._address, BLOB_SLOT, int.from_bytes(digest, "big"))


def genesis_storage(blob: bytes) -> tuple[dict[int, int], dict[bytes, bytes]]:
    """A system contract's genesis storage holding `blob`, and the node to store with it."""
    digest = keccak(blob)
    return {BLOB_SLOT: int.from_bytes(digest, "big")}, {digest: blob}


INSTALLED: dict[Address, SystemContract] = {}


def _precompile(contract: SystemContract) -> Callable[[ComputationAPI], ComputationAPI]:
    def run(computation: ComputationAPI) -> ComputationAPI:
        message = computation.msg
        if message.storage_address != contract.address:
            computation.output = b""
            raise Revert(b"")  # DELEGATECALL or CALLCODE: the storage is not the contract's
        call = SystemCall(
            sender=Address(message.sender),
            value=message.value,
            data=bytes(message.data),
            timestamp=computation.state.timestamp,
            block_number=computation.state.block_number,
            chain_id=computation.state.execution_context.chain_id,
            static=message.is_static,
        )
        outcome = contract.call(call, StateStore(computation.state, contract.address, message.is_static))
        if outcome.gas > computation.get_gas_remaining():
            raise OutOfGas(f"system contract needs {outcome.gas} gas")
        computation.consume_gas(outcome.gas, reason="system contract")
        computation.output = outcome.output
        if outcome.reverted:
            raise Revert(outcome.output)
        for log in outcome.logs:
            topics = tuple(int.from_bytes(topic, "big") for topic in log.topics)
            computation.add_log_entry(contract.address, topics, log.data)
        return computation

    return run


def install(contract: SystemContract) -> None:
    """Make calls to `contract.address` run `contract` on every state built from now on."""
    INSTALLED[contract.address] = contract
    ConclaveComputation._precompiles[contract.address] = _precompile(contract)


def read_only_stores(state: StateAPI) -> dict[Address, SystemStore]:
    """The installed contracts' stores in `state`, each read once: for the many questions
    asked of one state that does not change (admission at the head)."""
    return {address: StateStore(state, address, static=True) for address in INSTALLED}


def refusal_of(
    state: StateAPI, sender: Address, creates: bool, stores: dict[Address, SystemStore] | None = None
) -> str | None:
    """Why an installed system contract refuses a transaction from `sender`, or None."""
    stores = read_only_stores(state) if stores is None else stores
    for contract in INSTALLED.values():
        reason = contract.refusal(sender, creates, stores[contract.address])
        if reason is not None:
            return reason
    return None


def block_rules_of(state: StateAPI, stores: dict[Address, SystemStore] | None = None) -> BlockRules:
    """The rules of the block built on `state` (the first installed contract that sets any)."""
    stores = read_only_stores(state) if stores is None else stores
    for contract in INSTALLED.values():
        rules = contract.block_rules(stores[contract.address])
        if rules is not None:
            return rules
    return NO_RULES
