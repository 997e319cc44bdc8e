"""Chain parameters, the fork Conclave runs, and the genesis block.

Conclave runs the newest fork py-evm supports (Prague) from genesis. There is no mining:
difficulty and nonce are the post-merge constants, and `mix_hash` (PREVRANDAO) is the
parent's hash, so it is deterministic and every validator computes the same block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import rlp
from eth.abc import (
    BlockHeaderAPI,
    ComputationAPI,
    MessageAPI,
    SignedTransactionAPI,
    StateAPI,
    TransactionContextAPI,
)
from eth.vm.chain_context import ChainContext
from eth.vm.forks.london.constants import INITIAL_BASE_FEE
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState, PragueTransactionExecutor
from eth_hash.auto import keccak

from .confidential import HiddenAccount, Verdict, Visibility
from .defaults import DEFAULT_CHAIN_ID, DEFAULT_GAS_LIMIT
from .state_db import NodeCache, StateOverlay
from .types import ZERO_ADDRESS, Address, Hash32

EMPTY_CODE_HASH = Hash32(keccak(b""))

HEADER_CLASS = PragueBlockHeader
FORK_NAME = "prague"


class ConclaveComputation(PragueComputation):
    """Prague's computation; the chain's system contracts join its precompiles
    (`evm_runtime.system_contracts`), and frames respect the state's `Visibility`
    (`evm_runtime.confidential`)."""

    _precompiles = dict(PragueComputation.get_precompiles())

    @classmethod
    def apply_message(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        visibility: Visibility | None = getattr(state, "visibility", None)
        if visibility is not None:
            verdict = visibility.verdict(state, message.storage_address)
            if verdict is Verdict.HIDDEN and message.value and message.should_transfer_value:
                computation = cls(state, message, transaction_context)
                with computation:
                    raise HiddenAccount()
                return computation
            if verdict is Verdict.REACHABLE:
                visibility.note_reached(message.storage_address)
        return super().apply_message(state, message, transaction_context, parent_computation)

    @classmethod
    def apply_create_message(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        computation = super().apply_create_message(state, message, transaction_context, parent_computation)
        visibility: Visibility | None = getattr(state, "visibility", None)
        if visibility is not None and not computation.is_error:
            visibility.created(state, message.storage_address, message.sender)
        return computation


class ConclaveState(PragueState):
    """Prague's state; while `visibility` is set, confidential contracts it hides read as
    empty accounts (no code, no balance) and refuse ether."""

    computation_class = ConclaveComputation
    visibility: Visibility | None = None

    def get_code(self, address: Address) -> bytes:
        code = super().get_code(address)
        if code and self.visibility is not None and self.visibility.hides(self, address):
            return b""
        return code

    def get_code_hash(self, address: Address) -> Hash32:
        if self.visibility is not None and self.visibility.hides(self, address):
            return EMPTY_CODE_HASH
        return super().get_code_hash(address)

    def get_balance(self, address: Address) -> int:
        if self.visibility is not None and self.visibility.hides(self, address):
            return 0
        return super().get_balance(address)

    def set_balance(self, address: Address, balance: int) -> None:
        if self.visibility is not None and self.visibility.hides(self, address):
            raise HiddenAccount()
        super().set_balance(address, balance)


class ConclaveVM(PragueVM):
    """Prague, with Conclave's system contracts."""

    _state_class = ConclaveState


VM = ConclaveVM


class AdmittedTransactionExecutor(PragueTransactionExecutor):
    """Runs transactions that passed the stateless checks when they were decoded.

    py-evm re-checks every transaction's fields and signature before executing it; a
    transaction in a block was decoded by `transactions.decode_signed_transaction`, which
    made those checks once, so here only the checks against the state remain.
    """

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        self.vm_state.validate_transaction(transaction)


class BlockState(ConclaveState):
    """The state a block's transactions are applied to."""

    transaction_executor_class = AdmittedTransactionExecutor


MAX_EXTRA_DATA = 32


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Rules fixed for a chain's lifetime."""

    chain_id: int = DEFAULT_CHAIN_ID
    gas_limit: int = DEFAULT_GAS_LIMIT

    @property
    def context(self) -> ChainContext:
        return ChainContext(self.chain_id)


@dataclass(frozen=True, slots=True)
class GenesisAccount:
    """An account as it exists in the genesis state."""

    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Genesis:
    """The genesis block: its header and the state nodes that make its state root."""

    header: BlockHeaderAPI
    state_writes: dict[bytes, bytes]


def make_genesis(
    params: ChainParams,
    alloc: Mapping[Address, GenesisAccount],
    cache: NodeCache,
    timestamp: int = 0,
    extra_data: bytes = b"",
    extra_nodes: Mapping[bytes, bytes] | None = None,
) -> Genesis:
    """Build the genesis header over a state holding `alloc`; `extra_nodes` are stored with
    its state nodes (content the state refers to by hash, as a system contract's)."""
    template = VM.create_genesis_header(
        gas_limit=params.gas_limit,
        timestamp=timestamp,
        coinbase=ZERO_ADDRESS,
        extra_data=extra_data[:MAX_EXTRA_DATA],
        difficulty=0,
        base_fee_per_gas=INITIAL_BASE_FEE,
    )
    overlay = StateOverlay(cache)
    for key, value in (extra_nodes or {}).items():
        overlay[key] = value
    state = VM.build_state(overlay, template, params.context, ())
    for address in sorted(alloc):
        account = alloc[address]
        state.set_balance(address, account.balance)
        state.set_nonce(address, account.nonce)
        if account.code:
            state.set_code(address, account.code)
        for slot, value in sorted(account.storage.items()):
            state.set_storage(address, slot, value)
    state.persist()
    header = template.copy(state_root=state.state_root)
    return Genesis(header=header, state_writes=dict(overlay.writes))


def decode_header(encoded: bytes) -> BlockHeaderAPI:
    """A header from its RLP encoding (as stored)."""
    return rlp.decode(encoded, sedes=HEADER_CLASS)


def encode_header(header: BlockHeaderAPI) -> bytes:
    """The RLP encoding of a header (whose keccak is the block hash)."""
    return rlp.encode(header)


def next_base_fee(parent: BlockHeaderAPI) -> int:
    """The EIP-1559 base fee of the block after `parent`."""
    return calculate_expected_base_fee_per_gas(parent)
