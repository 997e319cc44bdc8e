"""The interface between the host and the enclave: plain data in, plain data out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from evm_runtime.block_access_list import BlockAccessList
from evm_runtime.calls import AccessListOutcome
from evm_runtime.chain import ChainParams, GenesisAccount
from evm_runtime.exceptions import ConclaveError
from evm_runtime.overrides import NO_OVERRIDES, StateOverrides
from evm_runtime.simulation import SimulatedBlock, SimulationRequest
from evm_runtime.state_patch import StatePatch
from evm_runtime.state_proofs import AccountProof
from evm_runtime.tracing import TraceOptions, TransactionTrace
from evm_runtime.transactions import CallRequest, DecodedTransaction
from evm_runtime.types import Address, ExecutedTransaction, Hash32
from governance.state import NetworkConfig
from ledger.ordering import ExecutionResult, ProposalVerdict
from ledger.receipts import GovernanceProof, TransactionProof
from ledger.store import BlockRecord, LogQuery


@dataclass(frozen=True, slots=True)
class Admitted:
    """A transaction the enclave accepted, with its sender's nonce and balance at the head."""

    transaction: DecodedTransaction
    account_nonce: int
    balance: int
    audience: frozenset[Address] | None = None
    """Who may see it while it waits (`enclave.acl.may_see_pending`); None: everyone."""
    forward: bytes = b""
    """What the other validators are sent of it (`enclave.proposals.forwardable`)."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A signed transaction to admit (`EnclaveAPI.admit_many`), with what `admit` takes."""

    raw: bytes
    private_for: tuple[Address, ...] | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """The public side of the enclave's keys."""

    address: Address
    """The validator address: the Ethereum address of the node's identity key."""
    public_key: bytes
    attestation_root: bytes
    """The public key of the attestation root that certifies this node's platform."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A confidential transaction opened for a reader who may see it, and its block."""

    block_number: int
    record: ExecutedTransaction


@dataclass(frozen=True, slots=True)
class AuthSession:
    """A login: the bearer token the enclave issued, the address it names, its expiry."""

    token: str
    address: Address
    expires_at: int
    """Unix time after which the token is refused."""


# -- disaster recovery (`enclave.recovery`, docs/recovery.md) ------------------------------


@dataclass(frozen=True, slots=True)
class RecoveryStatus:
    """Where recovery stands: whether this enclave reads the ledger, and the newest stored
    recovery set (threshold, holders, who submitted a share to this enclave so far)."""

    sealed: bool
    """True: this enclave's ledger secrets do not unseal the ledger (recovery is needed)."""
    node_public_key: bytes
    """The key shares are submitted encrypted to (`enclave.recovery.seal_submission`)."""
    issued_at: int | None = None
    """The block the newest recovery set was issued at (None: none is stored)."""
    threshold: int = 0
    secret_version: int = 0
    holders: tuple[Address, ...] = ()
    submitted: tuple[Address, ...] = ()
    problem: str = ""
    """Why no recovery set is issued now, if none can be (members must register keys)."""


class EnclaveAPI(Protocol):
    """Everything the host may ask of the trusted side."""

    @property
    def params(self) -> ChainParams: ...

    @property
    def measurement(self) -> bytes:
        """The measurement of the enclave code that runs (see `enclave.attestation`)."""

    def node_keys(self) -> NodeKeys: ...

    def quote(self, report_data: bytes) -> bytes:
        """An attestation quote binding the measurement, the node key and `report_data`."""

    def create_genesis(
        self, alloc: Mapping[Address, GenesisAccount], timestamp: int, governance: bytes | None = None
    ) -> BlockRecord:
        """The genesis block over `alloc` (not yet stored), governed by the encoded
        `governance` state (`governance.codec`; None: no governance)."""

    def admit(
        self, raw: bytes, private_for: Sequence[Address] | None = None, token: str | None = None
    ) -> Admitted:
        """Decode and check a signed transaction against the latest state; with
        `private_for`, as confidential to them, which only its sender, signed in with
        `token`, may ask."""

    def admit_many(self, submissions: Sequence[Submission]) -> list[Admitted | ConclaveError]:
        """`admit` each submission, in their order, in one call: for each, what it admitted
        or the domain error (`ConclaveError`) it raised; any other error fails the call."""

    # -- who is asking (EIP-4361 sign-in; `enclave.auth`) ------------------------------

    def auth_challenge(self) -> str:
        """A fresh sign-in nonce; each is accepted by one login only, and only for a while."""

    def auth_login(self, message: str, signature: bytes, domain: str) -> AuthSession:
        """Check a signed EIP-4361 message (its nonce one of `auth_challenge`'s, its domain
        `domain`, this chain's id, not expired) and issue a token bound to its address;
        Unauthenticated otherwise."""

    def viewer(self, token: str | None) -> Address | None:
        """The address a login token names (None for no token); Unauthenticated if the
        token is expired, tampered, signed out or not this node's."""

    def auth_logout(self, token: str) -> tuple[Address, float]:
        """Sign out everywhere: every token issued so far to the address `token` names is
        refused from now on; that address and the time. Unauthenticated if `token` is."""

    # -- ordering (ledger.ordering.BlockExecutor) -------------------------------------

    def account_nonce(self, address: Address) -> int: ...

    def account_nonces(self, addresses: Sequence[Address]) -> list[int]:
        """The latest nonces of `addresses`, in one call."""

    def next_base_fee(self) -> int: ...

    def execute(self, batch: Sequence[DecodedTransaction], timestamp: int) -> ExecutionResult:
        """A block of `batch` on the head, with its proposal (`enclave.proposals`) for the
        other validators; nothing counts until the host stores it and calls `committed`."""

    def reopen(self, record: bytes, timestamp: int) -> ExecutionResult:
        """The reopening block on the head (`governance.reopening`; `record` is an encoded
        `ApprovedReopening`), with its proposal and the validators it installs; InvalidAction
        (TooFewApprovals while members' approvals are missing) if it does not reopen."""

    def validate_proposal(self, payload: bytes, block_hash: Hash32) -> ProposalVerdict:
        """Execute a proposed block on the head: the block if it executes to `block_hash`
        with nothing left out and a sane time; otherwise why not. A reopening block's
        result names the validators it installs."""

    def block_payload(self, number: int) -> bytes:
        """The proposal of stored block `number`, made again from storage (for a validator
        catching up)."""

    def sign_as_validator(self, message_hash: Hash32) -> bytes:
        """The node key's validator signature over `message_hash` (`ledger.signing`):
        consensus messages, commit seals, transport handshakes."""

    def admit_forwarded(self, data: bytes) -> Admitted:
        """Admit a transaction another validator forwarded (`Admitted.forward`); a
        confidential one opens only here, and comes admitted by the enclave that sealed it."""

    def committed(self, block: BlockRecord) -> None: ...

    def reload_head(self) -> None:
        """The stored chain was cut back (a dev chain's revert): read the head again."""

    # -- reads at a block ---------------------------------------------------------------
    # Each takes the reader's login `token` (None: anonymous): a confidential contract the
    # reader may not see reads as an empty account (`enclave.acl`).

    def balance(self, address: Address, block_number: int, token: str | None = None) -> int: ...

    def nonce(self, address: Address, block_number: int, token: str | None = None) -> int: ...

    def code(self, address: Address, block_number: int, token: str | None = None) -> bytes: ...

    def storage_at(
        self, address: Address, slot: int, block_number: int, token: str | None = None
    ) -> bytes: ...

    def storage_values(
        self, requests: Mapping[Address, Sequence[int]], block_number: int, token: str | None = None
    ) -> dict[Address, list[bytes]]:
        """The 32-byte values of many slots of many accounts, in one call."""

    def prove_account(
        self, address: Address, slots: Sequence[int], block_number: int, token: str | None = None
    ) -> AccountProof:
        """The EIP-1186 proof of an account and some of its slots at a block."""

    def call(
        self,
        call: CallRequest,
        block_number: int,
        overrides: StateOverrides = NO_OVERRIDES,
        token: str | None = None,
    ) -> bytes:
        """The output of `call` on a block's state, as `overrides` change it."""

    def estimate_gas(
        self,
        call: CallRequest,
        block_number: int,
        overrides: StateOverrides = NO_OVERRIDES,
        token: str | None = None,
    ) -> int:
        """The least gas `call` succeeds with on a block's state, as `overrides` change it."""

    def create_access_list(
        self, call: CallRequest, block_number: int, token: str | None = None
    ) -> AccessListOutcome: ...

    # -- confidential transactions ------------------------------------------------------

    def confidential_transaction(self, tx_hash: Hash32, token: str | None = None) -> Opened | None:
        """A stored confidential transaction, opened, if the reader may see it."""

    def confidential_transactions(
        self, first: int, last: int, token: str | None = None, logs: LogQuery | None = None
    ) -> list[Opened]:
        """The confidential transactions of blocks `first`..`last` the reader may see, opened,
        in chain order; with `logs`, only those with a log it matches."""

    # -- governance -------------------------------------------------------------------

    def network_config(self) -> NetworkConfig | None:
        """The network configuration governance holds at the head (None: no governance)."""

    def validators(self, block_number: int | None = None) -> dict[Address, str]:
        """The validators governance names after block `block_number` (None: the head), with
        their endpoints; empty if no one governs."""

    def relay_governance(self, calldata: bytes, nonce: int) -> bytes:
        """A transaction from the node's own account carrying a member's signed governance
        message (`calldata` of a `…Signed` function), signed with the node's key; it is
        refused, unsigned, if the message would not apply now."""

    # -- ledger secrets between validators (`enclave.secret_transfer`) -----------------------

    def share_ledger_secrets(self, quote: bytes) -> bytes:
        """The ledger secrets, wrapped for the validator whose quote asks for them (report
        data `transfer_report_data(chain id)`, checked against governance's roots and
        measurements); NotPermitted for anyone else."""

    def adopt_ledger_secrets(self, wrapped: bytes) -> None:
        """Take the network's ledger secrets (`share_ledger_secrets`' answer for this node)
        in place of this enclave's own; only before the node has stored anything."""

    # -- disaster recovery (`enclave.recovery`, docs/recovery.md) -------------------------

    def recovery_issue(self) -> bytes | None:
        """A new recovery set (`RecoverySet.to_bytes`) for the host to store, when the members
        holding recovery keys, the threshold or the ledger secret version changed at the head
        since the stored one; None otherwise, or while this enclave cannot read the ledger."""

    def recovery_status(self) -> RecoveryStatus: ...

    def recovery_share(self, member: Address) -> bytes:
        """The member's share of the newest stored recovery set, encrypted to its key;
        NotFound if it holds none."""

    def submit_recovery_share(self, encrypted: bytes, signature: bytes) -> RecoveryStatus:
        """Take a member's share (`enclave.recovery.seal_submission`); at the threshold, restore
        the ledger secrets, verify the ledger with them and keep them (sealed): the ledger is
        then readable. NotPermitted for a non-holder; InvalidRequest for a bad submission."""

    # -- tracing --------------------------------------------------------------------

    def trace_block(
        self, block_number: int, options: TraceOptions, only: Hash32 | None = None, token: str | None = None
    ) -> list[TransactionTrace]:
        """Replay a block, tracing each of its transactions the reader may see, or only the
        one `only` names."""

    def trace_call(
        self, call: CallRequest, block_number: int, options: TraceOptions, token: str | None = None
    ) -> TransactionTrace:
        """Trace a call on a block's state; a call that fails is traced, not refused."""

    # -- dev chains -------------------------------------------------------------------

    def execute_patch(self, patch: StatePatch, timestamp: int) -> ExecutionResult:
        """A block of no transactions whose state is the head's with `patch` applied
        (`evm_runtime.state_patch`); like `execute`, it counts once stored and `committed`."""

    # -- simulation -----------------------------------------------------------------------

    def simulate(
        self, request: SimulationRequest, block_number: int, token: str | None = None
    ) -> list[SimulatedBlock]:
        """eth_simulateV1: the blocks `request` asks for, built on a stored block and never
        stored (`evm_runtime.simulation`)."""

    # -- block access lists ---------------------------------------------------------------

    def block_access_list(self, block_number: int) -> BlockAccessList:
        """The EIP-7928 access list of a stored block, recorded by replaying it
        (`evm_runtime.block_access_list`); nothing is stored."""

    # -- receipts anyone can verify (`ledger.receipts`, docs/receipts.md) -------------------

    def transaction_proof(self, tx_hash: Hash32, token: str | None = None) -> TransactionProof | None:
        """A stored transaction and its receipt, proven into their block's transactions and
        receipts roots (which cover the block's confidential transactions, so only the
        enclave makes the proofs); None for a hash no block holds, and for a confidential
        transaction the reader may not see: the same answer."""

    def governance_proof(self, block_number: int) -> GovernanceProof | None:
        """Governance's state after block `block_number`, proven from the block's state root
        (None: no one governs)."""

    # -- receipts across a reopening --

    def reopening_record(self, block_number: int) -> bytes | None:
        """The approved reopening record (`governance.reopening.ApprovedReopening.encode()`)
        block `block_number` applied, if it is a reopening block; else None (NotFound for a
        block not stored)."""
