"""The enclave's work, run in the process that holds it: the enclave process (`enclave.main`),
or the node's own for tests and tools."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import rlp
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth.abc import BlockHeaderAPI, StateAPI
from eth_account import Account

from evm_runtime.block_access_list import BlockAccessList, block_access_list
from evm_runtime.block_builder import BlockEnv, BuiltBlock, build_block
from evm_runtime.calls import AccessListOutcome, CallContext, state_at
from evm_runtime.chain import (
    EMPTY_CODE_HASH,
    ChainParams,
    GenesisAccount,
    decode_header,
    encode_header,
    make_genesis,
    next_base_fee,
)
from evm_runtime.confidential import ANONYMOUS, MAX_PARTIES, Reader, creation_parties, is_confidential
from evm_runtime.exceptions import (
    ConclaveError,
    FeeTooLow,
    InsufficientFunds,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    NotPermitted,
    Unauthenticated,
)
from evm_runtime.overrides import NO_OVERRIDES, StateOverrides
from evm_runtime.receipt_proofs import ordered_trie, prove_key
from evm_runtime.simulation import SimulatedBlock, SimulationRequest, simulate
from evm_runtime.state_db import NodeCache
from evm_runtime.state_patch import StatePatch, build_patch_block
from evm_runtime.state_proofs import AccountProof, StorageProof, prove_account
from evm_runtime.system_contracts import (
    BLOB_SLOT,
    BlockRules,
    SystemStore,
    block_rules_of,
    genesis_storage,
    read_only_stores,
    refusal_of,
)
from evm_runtime.tracing import TraceOptions, TransactionTrace, trace_block, trace_call
from evm_runtime.transactions import (
    CallRequest,
    DecodedTransaction,
    check_admissible,
    decode_recovered,
    decode_signed_transaction,
)
from evm_runtime.trie_root import BLANK_ROOT
from evm_runtime.types import ZERO_ADDRESS, Address, ExecutedTransaction, Hash32
from governance.codec import decode_state
from governance.exceptions import InvalidAction
from governance.reopening import ApprovedReopening, build_reopening_block, stored_reopening
from governance.state import GovernanceState, NetworkConfig
from governance.system_contract import CODE_MARKER, GOVERNANCE_ADDRESS, SELECTORS, governance_state
from ledger.ordering import ExecutionResult, ProposalVerdict
from ledger.receipts import GovernanceProof, TransactionProof
from ledger.recovery_sets import latest_recovery_set
from ledger.store import MAX_ANCESTORS, BlockRecord, LedgerStore, LogQuery, SealedRow, log_matches

from .acl import may_see_transaction
from .attestation import (
    REPORT_DATA_BYTES,
    VALIDATOR_QUOTE_MAX_AGE,
    AttestationError,
    make_quote,
    measure_enclave,
    verify_quote,
    verify_validator_quote,
)
from .auth import Authenticator
from .identity import address_of
from .interface import Admitted, AuthSession, NodeKeys, Opened, RecoveryStatus, Submission
from .keystore import open_keystore, with_ledger_secrets
from .proposals import (
    MalformedProposal,
    decode_proposal,
    encode_proposal,
    forwardable,
    open_forwarded,
    stored_batch,
)
from .records import open_record, seal_record
from .recovery import (
    RecoverySet,
    RecoveryUnavailable,
    combine_shares,
    issue_recovery_set,
    open_submission,
    recovery_policy,
    unwrap_ledger_secrets,
)
from .sealed_state import SealedNodes, SealedStateUnreadable, seal_writes
from .sealing import LedgerSecrets, UnsealError
from .secret_transfer import transfer_report_data, unwrap_secrets, wrap_secrets
from .verification import check_ledger_secrets, verify_ledger

log = logging.getLogger(__name__)
T = TypeVar("T")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MAX_OPENED_BLOCKS = 100_000
"""The most blocks one request opens the confidential transactions of."""
TRANSACTION_SEAL_INFO = b"conclave/transaction-seal-key/v1"
MAX_CLOCK_DRIFT = 15
"""Seconds a proposed block's time may be ahead of this node's clock."""
RELAY_TIP = 10**9
"""The priority fee of the transactions that relay signed governance messages (1 gwei)."""


def _one_block_at_a_time(method: Callable[..., T]) -> Callable[..., T]:
    """Executing and committing blocks take turns: a block is executed on the head and
    committed before the next one is executed (reads go on meanwhile, on other threads)."""

    @functools.wraps(method)
    def in_turn(self: InProcessEnclave, *args: Any) -> T:
        with self._block_lock:
            return method(self, *args)

    return in_turn


class InProcessEnclave:
    """Executes, reads state, keeps the keys and attests, for one node, in this process."""

    def __init__(
        self,
        store: LedgerStore,
        params: ChainParams,
        *,
        coinbase: Address = ZERO_ADDRESS,
        cache_entries: int | None = None,
        keys_dir: Path | None = None,
        renew_foreign_keys: bool = False,
    ) -> None:
        """`keys_dir` keeps the sealed node key and ledger secrets (None: new ones in memory);
        `renew_foreign_keys` lets a dev node start over when they were sealed by other code."""
        self._store = store
        self._params = params
        self._coinbase = coinbase
        # State is stored sealed (`enclave.sealed_state`); the cache holds it in clear.
        nodes = SealedNodes(store, self._ledger_secrets)
        self._cache = NodeCache(nodes) if cache_entries is None else NodeCache(nodes, cache_entries)
        self._block_lock = threading.Lock()
        self._head_lock = threading.RLock()
        """Guards the head and what is derived from it: one thread executes blocks and commits
        them while another answers reads (`enclave.main`)."""
        self._head: BlockHeaderAPI | None = None
        # The head's hash and its ancestors', oldest first: BLOCKHASH needs 256 before a block.
        self._ancestors: deque[Hash32] = deque(maxlen=MAX_ANCESTORS + 1)
        self._head_state: StateAPI | None = None
        self._head_stores: dict[Address, SystemStore] | None = None
        """The system contracts' stores at the head, each read once (admission asks often)."""
        self._measurement = measure_enclave(PROJECT_ROOT)
        self._keys_dir = keys_dir
        self._keys = open_keystore(keys_dir, self._measurement, renew_foreign=renew_foreign_keys)
        self._last_executed: tuple[Hash32, dict[bytes, bytes]] = (Hash32(b""), {})
        """The block this enclave executed last and its state writes, in clear."""
        self._auth = Authenticator.for_identity(self._keys.identity, params.chain_id, directory=keys_dir)
        # -- disaster recovery (docs/recovery.md) --
        self._recovery_lock = threading.Lock()
        self._issued_fingerprint: bytes | None = None
        """The fingerprint of the newest recovery set stored or handed out (None: not read yet)."""
        self._recovery_submitted: dict[Address, bytes] = {}
        """The shares members submitted to this enclave while it cannot read the ledger."""

    def _ledger_secrets(self) -> LedgerSecrets:
        """The ledger secrets now (they rotate): what state nodes are sealed and unsealed with."""
        return self._keys.ledger_secrets

    @property
    def params(self) -> ChainParams:
        return self._params

    @property
    def measurement(self) -> bytes:
        return self._measurement

    # -- identity and attestation --------------------------------------------------------

    def node_keys(self) -> NodeKeys:
        identity = self._keys.identity
        return NodeKeys(identity.address, identity.public_key, self._keys.attestation_root)

    def transaction_seal_key(self) -> bytes:
        """The key an enclave process seals the transactions it hands the host with
        (`enclave.messages`); not a call of the host's. Derived from the identity key, so
        seals outlive a restart of the process."""
        return HKDF(algorithm=SHA256(), length=32, salt=None, info=TRANSACTION_SEAL_INFO).derive(
            self._keys.identity.key.secret
        )

    def quote(self, report_data: bytes) -> bytes:
        if len(report_data) > REPORT_DATA_BYTES:
            raise InvalidRequest(f"report data has at most {REPORT_DATA_BYTES} bytes, got {len(report_data)}")
        identity = self._keys.identity
        issued_at = int(time.time())
        return make_quote(
            self._keys.platform, self._measurement, identity.public_key, report_data, issued_at
        ).encode()

    # -- who is asking --------------------------------------------------------------------
    # EIP-4361 sign-in (`enclave.auth`): tokens are MAC'd with a key derived from the node's
    # identity key, so they outlive a restart of this enclave; nonces do not.

    def auth_challenge(self) -> str:
        return self._auth.challenge()

    def auth_login(self, message: str, signature: bytes, domain: str) -> AuthSession:
        return self._auth.login(message, signature, domain)

    def viewer(self, token: str | None) -> Address | None:
        return self._auth.viewer(token)

    def auth_logout(self, token: str) -> tuple[Address, float]:
        return self._auth.sign_out(token)

    # -- genesis and head -----------------------------------------------------------------

    def create_genesis(
        self, alloc: Mapping[Address, GenesisAccount], timestamp: int, governance: bytes | None = None
    ) -> BlockRecord:
        nodes: dict[bytes, bytes] = {}
        if governance is not None:
            decode_state(governance)  # refuses bytes that are not a governance state
            storage, nodes = genesis_storage(governance)
            alloc = {**alloc, GOVERNANCE_ADDRESS: GenesisAccount(code=CODE_MARKER, storage=storage)}
        genesis = make_genesis(self._params, alloc, self._cache, timestamp=timestamp, extra_nodes=nodes)
        header = genesis.header
        self._last_executed = (Hash32(header.hash), genesis.state_writes)
        return BlockRecord(
            number=0,
            hash=Hash32(header.hash),
            parent_hash=Hash32(header.parent_hash),
            header=encode_header(header),
            timestamp=header.timestamp,
            state_writes=self._sealed_writes(genesis.state_writes),
        )

    def _sealed_writes(self, writes: dict[bytes, bytes]) -> dict[bytes, bytes]:
        """State writes as they cross to the host and are stored: sealed (`enclave.sealed_state`)."""
        return seal_writes(self._ledger_secrets(), writes)

    def _head_header(self) -> BlockHeaderAPI:
        with self._head_lock:
            if self._head is None:
                stored = self._store.head()
                if stored is None:
                    raise NotFound("the ledger has no genesis block yet")
                self._head = decode_header(stored.header)
                recent = self._store.ancestor_hashes(stored.number, MAX_ANCESTORS + 1)
                self._ancestors.extend(reversed(recent))
            return self._head

    def _stores(self) -> dict[Address, SystemStore]:
        with self._head_lock:
            if self._head_stores is None:
                self._head_stores = read_only_stores(self._latest_state())
            return self._head_stores

    def _latest_state(self) -> StateAPI:
        with self._head_lock:
            if self._head_state is None:
                self._head_state = state_at(self._head_header(), self._params, self._cache)
            return self._head_state

    def _header_at(self, block_number: int) -> BlockHeaderAPI:
        head = self._head_header()
        if block_number == head.block_number:
            return head
        stored = self._store.block_by_number(block_number)
        if stored is None:
            raise NotFound(f"block {block_number} not found")
        return decode_header(stored.header)

    def _state_at(self, block_number: int) -> StateAPI:
        if block_number == self._head_header().block_number:
            return self._latest_state()
        return state_at(self._header_at(block_number), self._params, self._cache)

    # -- admission --------------------------------------------------------------------

    def admit(
        self, raw: bytes, private_for: Sequence[Address] | None = None, token: str | None = None
    ) -> Admitted:
        decoded = decode_signed_transaction(raw, self._params.chain_id)
        if private_for is not None:
            decoded = self._confidential_submission(decoded, private_for, token)
        return self._admit(decoded, forwardable(self._keys.ledger_secrets, decoded))

    def admit_many(self, submissions: Sequence[Submission]) -> list[Admitted | ConclaveError]:
        outcomes: list[Admitted | ConclaveError] = []
        for submission in submissions:
            try:
                outcomes.append(self.admit(submission.raw, submission.private_for, submission.token))
            except ConclaveError as refused:
                outcomes.append(refused)
        return outcomes

    def admit_forwarded(self, data: bytes) -> Admitted:
        decoded = open_forwarded(self._keys.ledger_secrets, data, self._params.chain_id)
        return self._admit(decoded, data)

    def _admit(self, decoded: DecodedTransaction, forward: bytes) -> Admitted:
        state = self._latest_state()
        refusal = refusal_of(state, decoded.sender, not decoded.tx.to, self._stores())
        if refusal is not None:
            raise NotPermitted(refusal)
        config = self.network_config()
        if config is not None and decoded.tx.max_fee_per_gas < config.min_gas_price:
            raise FeeTooLow(
                f"max fee per gas {decoded.tx.max_fee_per_gas} is below the network's minimum gas price "
                f"{config.min_gas_price} (set by governance)"
            )
        nonce, balance = state.get_nonce(decoded.sender), state.get_balance(decoded.sender)
        check_admissible(
            decoded,
            account_nonce=nonce,
            balance=balance,
            base_fee=self.next_base_fee(),
            block_gas_limit=self._next_rules().gas_limit or self._params.gas_limit,
        )
        return Admitted(decoded, nonce, balance, self._audience(state, decoded), forward)

    def _confidential_submission(
        self, decoded: DecodedTransaction, private_for: Sequence[Address], token: str | None
    ) -> DecodedTransaction:
        """`decoded` as confidential to `private_for`: only its signed-in sender may say so."""
        sender = decoded.sender
        viewer = self.viewer(token)
        if viewer != sender:
            who = "no one is signed in" if viewer is None else f"the request is signed in as 0x{viewer.hex()}"
            raise Unauthenticated(
                f"a confidential transaction is sent by its own sender: sign in as 0x{sender.hex()} "
                f"(/auth/nonce, /auth/login) and send the token with the request; {who}"
            )
        parties = tuple(sorted(set(private_for) - {sender}))
        if len(parties) > MAX_PARTIES:
            raise InvalidRequest(f"privateFor names {len(parties)} parties; at most {MAX_PARTIES}")
        return replace(decoded, private_for=parties)

    def _audience(self, state: StateAPI, decoded: DecodedTransaction) -> frozenset[Address] | None:
        """Who may see `decoded` while it waits: everyone (None), or its sender, the parties
        it names and those of the confidential contract it is sent to."""
        to = decoded.tx.to or None
        parties = creation_parties(state, Address(to)) if to else ()
        if decoded.private_for is None and not parties:
            return None
        return frozenset((decoded.sender, *(decoded.private_for or ()), *parties))

    # -- ordering -------------------------------------------------------------------------

    def account_nonce(self, address: Address) -> int:
        return self._latest_state().get_nonce(address)

    def account_nonces(self, addresses: Sequence[Address]) -> list[int]:
        state = self._latest_state()
        return [state.get_nonce(address) for address in addresses]

    def _next_rules(self) -> BlockRules:
        return block_rules_of(self._latest_state(), self._stores())

    def next_base_fee(self) -> int:
        return 0 if self._next_rules().free_gas else next_base_fee(self._head_header())

    @_one_block_at_a_time
    def execute(self, batch: Sequence[DecodedTransaction], timestamp: int) -> ExecutionResult:
        built = self._build(batch, BlockEnv(coinbase=self._coinbase, timestamp=timestamp))
        included = {tx.hash for tx in built.transactions}
        payload = encode_proposal(
            self._keys.ledger_secrets,
            built.header.timestamp,
            self._coinbase,
            [decoded for decoded in batch if decoded.hash in included],
        )
        return replace(self._executed(self._sealed(built)), payload=payload)

    def _build(self, batch: Sequence[DecodedTransaction], env: BlockEnv) -> BuiltBlock:
        return build_block(
            self._head_header(), batch, self._params, env, self._cache, reversed(self._ancestors)
        )

    @_one_block_at_a_time
    def reopen(self, record: bytes, timestamp: int) -> ExecutionResult:
        built, installs = self._build_reopening(record, self._coinbase, timestamp)
        payload = encode_proposal(
            self._keys.ledger_secrets, built.header.timestamp, self._coinbase, (), record
        )
        return replace(self._executed(built), payload=payload, installs=installs)

    def _build_reopening(
        self, record: bytes, coinbase: Address, timestamp: int
    ) -> tuple[BuiltBlock, tuple[Address, ...]]:
        approved = ApprovedReopening.decode(record)
        return build_reopening_block(
            self._head_header(),
            approved,
            self._params,
            coinbase,
            timestamp,
            self._cache,
            verify_validator_quote,
        )

    @_one_block_at_a_time
    def validate_proposal(self, payload: bytes, block_hash: Hash32) -> ProposalVerdict:
        try:
            proposal = decode_proposal(self._keys.ledger_secrets, payload, self._params.chain_id)
        except MalformedProposal as refused:
            return ProposalVerdict(None, str(refused))
        parent = self._head_header()
        if proposal.timestamp <= parent.timestamp:
            return ProposalVerdict(None, f"its time {proposal.timestamp} is not after its parent's")
        if proposal.timestamp > time.time() + MAX_CLOCK_DRIFT:
            return ProposalVerdict(None, f"its time {proposal.timestamp} is ahead of this node's clock")
        installs: tuple[Address, ...] = ()
        if proposal.record:
            try:
                record, coinbase = proposal.record, proposal.coinbase
                built, installs = self._build_reopening(record, coinbase, proposal.timestamp)
            except InvalidAction as refused:
                return ProposalVerdict(None, f"its reopening is refused: {refused}")
        else:
            built = self._build(
                proposal.batch, BlockEnv(coinbase=proposal.coinbase, timestamp=proposal.timestamp)
            )
        if built.dropped or built.deferred:
            return ProposalVerdict(None, "it holds transactions its block cannot include")
        if built.hash != block_hash:
            return ProposalVerdict(
                None, f"it executes to block 0x{built.hash.hex()}, not 0x{block_hash.hex()}"
            )
        result = replace(self._executed(self._sealed(built)), payload=payload, installs=installs)
        return ProposalVerdict(result)

    def block_payload(self, number: int) -> bytes:
        stored = self._store.block_by_number(number)
        if stored is None:
            raise NotFound(f"block {number} not found")
        header = decode_header(stored.header)
        secrets = self._keys.ledger_secrets
        coinbase = Address(header.coinbase)
        reopening = stored_reopening(header, self._cache)
        if reopening is not None:
            return encode_proposal(secrets, header.timestamp, coinbase, (), reopening.encode())
        batch = stored_batch(self._store, secrets, number, self._params.chain_id)
        return encode_proposal(secrets, header.timestamp, coinbase, batch)

    def sign_as_validator(self, message_hash: Hash32) -> bytes:
        return self._keys.identity.sign_as_validator(message_hash)

    def _sealed(self, built: BuiltBlock) -> BuiltBlock:
        """`built` with its confidential transactions sealed (`enclave.records`)."""
        if not any(tx.confidential for tx in built.transactions):
            return built
        secrets = self._keys.ledger_secrets
        sealed = tuple(seal_record(secrets, tx) if tx.confidential else tx for tx in built.transactions)
        return replace(built, transactions=sealed)

    def _executed(self, built: BuiltBlock) -> ExecutionResult:
        header = built.header
        record = BlockRecord(
            number=header.block_number,
            hash=built.hash,
            parent_hash=Hash32(header.parent_hash),
            header=encode_header(header),
            timestamp=header.timestamp,
            transactions=built.transactions,
            state_writes=self._sealed_writes(built.state_writes),
        )
        self._last_executed = (built.hash, built.state_writes)
        return ExecutionResult(block=record, dropped=built.dropped)

    @_one_block_at_a_time
    def committed(self, block: BlockRecord) -> None:
        """`block` is stored: it is the new head. If this enclave executed it last, its
        state writes, kept in clear, warm the node cache (the record's are sealed, and an
        enclave in another process gets a slim record without them)."""
        writes = self._last_executed[1] if self._last_executed[0] == block.hash else None
        self._last_executed = (Hash32(b""), {})
        if writes:
            self._cache.absorb(writes)
        with self._head_lock:
            self._head = decode_header(block.header)
            self._ancestors.append(block.hash)
            self._head_state = None
            self._head_stores = None
            self._follow_ledger_secret()

    def _follow_ledger_secret(self) -> None:
        """Rotate the ledger secret when governance asked for a newer one (governance counts
        versions from 1, the secrets from 0); new data is sealed with it, old stays readable."""
        state = self._governance()
        if state is None:
            return
        secrets = self._keys.ledger_secrets
        while secrets.current_version < state.ledger_secret_version - 1:
            secrets = secrets.rotated()
        if secrets is not self._keys.ledger_secrets:
            self._keys = with_ledger_secrets(self._keys, secrets, self._keys_dir, self._measurement)
            log.info("ledger secret rotated to version %d", secrets.current_version)

    @property
    def ledger_secret_version(self) -> int:
        """The version new confidential data is sealed with."""
        return self._keys.ledger_secrets.current_version

    def reload_head(self) -> None:
        with self._head_lock:
            self._head = None
            self._head_state = None
            self._head_stores = None
            self._ancestors.clear()
            self._last_executed = (Hash32(b""), {})

    # -- reads ----------------------------------------------------------------------------

    def _reader(self, token: str | None) -> Reader:
        """Who reads, as the login `token` names them, with the auditors' grants at the head."""
        viewer = self.viewer(token)
        if viewer is None:
            return ANONYMOUS
        state = self._governance()
        grants = {} if state is None else state.readers
        return Reader(viewer, lambda contract: grants.get(contract, frozenset()))

    def _hides(self, state: StateAPI, address: Address, token: str | None) -> bool:
        return self._reader(token).visibility().hides(state, address)

    def balance(self, address: Address, block_number: int, token: str | None = None) -> int:
        state = self._state_at(block_number)
        return 0 if self._hides(state, address, token) else state.get_balance(address)

    def nonce(self, address: Address, block_number: int, token: str | None = None) -> int:
        state = self._state_at(block_number)
        return 0 if self._hides(state, address, token) else state.get_nonce(address)

    def code(self, address: Address, block_number: int, token: str | None = None) -> bytes:
        state = self._state_at(block_number)
        return b"" if self._hides(state, address, token) else state.get_code(address)

    def storage_at(self, address: Address, slot: int, block_number: int, token: str | None = None) -> bytes:
        return self.storage_values({address: [slot]}, block_number, token)[address][0]

    def storage_values(
        self, requests: Mapping[Address, Sequence[int]], block_number: int, token: str | None = None
    ) -> dict[Address, list[bytes]]:
        state = self._state_at(block_number)
        visibility = self._reader(token).visibility()
        return {
            address: [
                (0 if visibility.hides(state, address) else state.get_storage(address, slot)).to_bytes(
                    32, "big"
                )
                for slot in slots
            ]
            for address, slots in requests.items()
        }

    def prove_account(
        self, address: Address, slots: Sequence[int], block_number: int, token: str | None = None
    ) -> AccountProof:
        """An outsider asking about a confidential contract gets an empty account and no
        proof nodes (a proof would show the account exists)."""
        if self._hides(self._state_at(block_number), address, token):
            empty = tuple(StorageProof(slot, 0, ()) for slot in slots)
            return AccountProof(address, 0, 0, EMPTY_CODE_HASH, BLANK_ROOT, (), empty)
        return prove_account(self._header_at(block_number).state_root, self._cache, address, slots)

    def _call_context(
        self, block_number: int, overrides: StateOverrides = NO_OVERRIDES, token: str | None = None
    ) -> CallContext:
        return CallContext(
            self._header_at(block_number),
            self._params,
            self._cache,
            self._ancestors_before(block_number),
            overrides,
            self._reader(token),
        )

    def _ancestors_before(self, block_number: int) -> tuple[Hash32, ...]:
        """Hashes of the blocks before `block_number`, newest first (up to 256)."""
        if block_number == self._head_header().block_number:
            return tuple(reversed(self._ancestors))[1:]
        return tuple(self._store.ancestor_hashes(block_number - 1)) if block_number else ()

    def call(
        self,
        call: CallRequest,
        block_number: int,
        overrides: StateOverrides = NO_OVERRIDES,
        token: str | None = None,
    ) -> bytes:
        return self._call_context(block_number, overrides, token).call(call).output

    def estimate_gas(
        self,
        call: CallRequest,
        block_number: int,
        overrides: StateOverrides = NO_OVERRIDES,
        token: str | None = None,
    ) -> int:
        return self._call_context(block_number, overrides, token).estimate_gas(call)

    def create_access_list(
        self, call: CallRequest, block_number: int, token: str | None = None
    ) -> AccessListOutcome:
        return self._call_context(block_number, token=token).create_access_list(call)

    # -- confidential transactions --------------------------------------------------------

    def _open(self, row: SealedRow) -> ExecutedTransaction:
        return open_record(self._keys.ledger_secrets, row)

    def _may_see(self, token: str | None) -> Callable[[ExecutedTransaction], bool] | None:
        """Whether the reader `token` names may see an opened confidential transaction
        (`enclave.acl`); None for an anonymous reader, who sees none."""
        reader = self._reader(token)
        if reader.address is None:
            return None
        visibility, state = reader.visibility(), self._latest_state()
        return lambda record: may_see_transaction(
            reader.address, record, lambda contract: not visibility.hides(state, contract)
        )

    def confidential_transaction(self, tx_hash: Hash32, token: str | None = None) -> Opened | None:
        may_see = self._may_see(token)
        if may_see is None:
            return None
        row = self._store.sealed_transaction(tx_hash)
        if row is None:
            return None
        record = self._open(row)
        return Opened(row.block_number, record) if may_see(record) else None

    def confidential_transactions(
        self, first: int, last: int, token: str | None = None, logs: LogQuery | None = None
    ) -> list[Opened]:
        if last - first + 1 > MAX_OPENED_BLOCKS:
            raise LimitExceeded(f"at most {MAX_OPENED_BLOCKS} blocks of confidential transactions at once")
        may_see = self._may_see(token)
        if may_see is None:
            return []
        opened = ((row.block_number, self._open(row)) for row in self._store.sealed_transactions(first, last))
        return [
            Opened(number, record)
            for number, record in opened
            if (logs is None or any(log_matches(logs, entry.address, entry.topics) for entry in record.logs))
            and may_see(record)
        ]

    # -- governance -----------------------------------------------------------------------

    def _governance(self) -> GovernanceState | None:
        return governance_state(self._stores()[GOVERNANCE_ADDRESS])

    def network_config(self) -> NetworkConfig | None:
        state = self._governance()
        return None if state is None else state.config

    def validators(self, block_number: int | None = None) -> dict[Address, str]:
        if block_number is None or block_number == self._head_header().block_number:
            state = self._governance()
        else:
            state = governance_state(read_only_stores(self._state_at(block_number))[GOVERNANCE_ADDRESS])
        return {} if state is None else {address: v.endpoint for address, v in state.validators.items()}

    def relay_governance(self, calldata: bytes, nonce: int) -> bytes:
        if not SELECTORS.get(calldata[:4], "").endswith("Signed"):
            raise InvalidRequest(
                "only signed governance messages (proposeSigned, voteSigned, withdrawSigned) are relayed"
            )
        identity = self._keys.identity
        base_fee = self.next_base_fee()
        fees = {"max_fee_per_gas": 2 * base_fee + RELAY_TIP, "max_priority_fee_per_gas": RELAY_TIP}
        call = CallRequest(
            sender=identity.address, to=GOVERNANCE_ADDRESS, gas=self._params.gas_limit, data=calldata, **fees
        )
        try:
            gas = self._call_context(self._head_header().block_number).estimate_gas(call)
        except InsufficientFunds:
            raise InsufficientFunds(
                f"this node's account 0x{identity.address.hex()} cannot pay for relaying: send it some ether"
            ) from None
        transaction = {
            "type": 2,
            "chainId": self._params.chain_id,
            "nonce": nonce,
            "to": GOVERNANCE_ADDRESS,
            "data": calldata,
            "value": 0,
            "gas": gas,
            "maxFeePerGas": fees["max_fee_per_gas"],
            "maxPriorityFeePerGas": fees["max_priority_fee_per_gas"],
        }
        return bytes(Account.sign_transaction(transaction, identity.key.secret).raw_transaction)

    # -- ledger secrets between validators (`enclave.secret_transfer`) -----------------------

    def share_ledger_secrets(self, quote: bytes) -> bytes:
        state = self._governance()
        if state is None:
            raise NotPermitted(
                "this network has no governance, hence no validators to share ledger secrets with"
            )
        try:
            verified = verify_quote(
                quote,
                roots=state.attestation_roots,
                approved_measurements=state.measurements,
                now=int(time.time()),
                max_age=VALIDATOR_QUOTE_MAX_AGE,
                report_data=transfer_report_data(self._params.chain_id),
            )
        except (AttestationError, ValueError) as refused:
            raise NotPermitted(f"the quote is refused: {refused}") from None
        address = address_of(verified.node_public_key)
        if address not in state.validators:
            raise NotPermitted(
                f"0x{address.hex()} is not a validator: governance adds it (add_validator) before it "
                "may read the ledger"
            )
        return wrap_secrets(self._keys.ledger_secrets, verified.node_public_key, self._params.chain_id)

    def adopt_ledger_secrets(self, wrapped: bytes) -> None:
        if self._store.head() is not None:
            raise InvalidRequest(
                "a node takes the network's ledger secrets before it stores anything: start it on an "
                "empty data directory"
            )
        try:
            secrets = unwrap_secrets(self._keys.identity, wrapped, self._params.chain_id)
        except UnsealError as refused:
            raise InvalidRequest(str(refused)) from None
        self._keys = with_ledger_secrets(self._keys, secrets, self._keys_dir, self._measurement)
        log.info("ledger secrets adopted: versions 0..%d", secrets.current_version)

    # -- disaster recovery (`enclave.recovery`, docs/recovery.md) -------------------------

    def _stored_recovery_set(self) -> RecoverySet | None:
        stored = latest_recovery_set(self._store.engine)
        if stored is None:
            return None
        try:
            return RecoverySet.from_bytes(stored[1])
        except ValueError as damaged:
            log.warning("the newest stored recovery set does not decode: %s", damaged)
            return None

    def _reads_ledger(self) -> bool:
        """Whether this enclave's ledger secrets unseal the stored ledger (an empty one: yes)."""
        try:
            check_ledger_secrets(self._store, self._keys.ledger_secrets)
        except SealedStateUnreadable:
            return False
        return True

    def _recovery_policy_problem(self) -> str:
        state = self._governance()
        if state is None:
            return "this network has no governance, hence no members to hold recovery shares"
        try:
            recovery_policy(state, self._keys.ledger_secrets.current_version)
        except RecoveryUnavailable as why:
            return str(why)
        return ""

    def recovery_issue(self) -> bytes | None:
        with self._recovery_lock:
            try:
                state = self._governance()
            except (SealedStateUnreadable, NotFound):
                return None
            if state is None:
                return None
            secrets = self._keys.ledger_secrets
            try:
                policy = recovery_policy(state, secrets.current_version)
            except RecoveryUnavailable:
                return None
            fingerprint = policy.fingerprint(self._params.chain_id)
            if self._issued_fingerprint is None:
                stored = self._stored_recovery_set()
                self._issued_fingerprint = b"" if stored is None else stored.fingerprint
            if fingerprint == self._issued_fingerprint:
                return None
            head = self._head_header().block_number
            issued = issue_recovery_set(secrets, policy, self._params.chain_id, head)
            self._issued_fingerprint = fingerprint
            holders = len(policy.holders)
            log.info("recovery shares issued at block %d: %d of %d", head, policy.threshold, holders)
            return issued.to_bytes()

    def recovery_status(self) -> RecoveryStatus:
        stored = self._stored_recovery_set()
        sealed = not self._reads_ledger()
        problem = "" if sealed or self._store.head() is None else self._recovery_policy_problem()
        public_key = self._keys.identity.public_key
        if stored is None:
            return RecoveryStatus(sealed, public_key, problem=problem)
        return RecoveryStatus(
            sealed=sealed,
            node_public_key=public_key,
            issued_at=stored.block_number,
            threshold=stored.threshold,
            secret_version=stored.secret_version,
            holders=tuple(sorted(stored.shares)),
            submitted=tuple(sorted(self._recovery_submitted)),
            problem=problem,
        )

    def recovery_share(self, member: Address) -> bytes:
        stored = self._stored_recovery_set()
        if stored is None:
            raise NotFound("this ledger holds no recovery shares: members register recovery keys first")
        entry = stored.shares.get(member)
        if entry is None:
            raise NotFound(
                f"0x{member.hex()} holds no share of the newest recovery set (block {stored.block_number})"
            )
        return entry[1]

    def submit_recovery_share(self, encrypted: bytes, signature: bytes) -> RecoveryStatus:
        with self._recovery_lock:
            self._take_recovery_share(encrypted, signature)
        return self.recovery_status()

    def _take_recovery_share(self, encrypted: bytes, signature: bytes) -> None:
        """Keep a member's share; at the threshold, restore, verify and adopt the secrets."""
        if self._reads_ledger():
            raise InvalidRequest("this enclave reads the ledger already: there is nothing to recover")
        stored = self._stored_recovery_set()
        if stored is None:
            raise NotFound(
                "this ledger holds no recovery set, so it cannot be recovered from shares (its members "
                "had not registered recovery keys)"
            )
        chain_id = self._params.chain_id
        try:
            member, share = open_submission(self._keys.identity.key.secret, encrypted, signature, chain_id)
        except UnsealError as refused:
            raise InvalidRequest(
                f"the submission is refused: {refused} (it must be encrypted to this node's key: "
                "/recovery/status shows it)"
            ) from None
        if member not in stored.shares:
            raise NotPermitted(
                f"0x{member.hex()} holds no share of the newest recovery set (block {stored.block_number})"
            )
        self._recovery_submitted[member] = share
        if len(self._recovery_submitted) < stored.threshold:
            return
        shares = list(self._recovery_submitted.values())
        self._recovery_submitted.clear()
        try:
            secrets = unwrap_ledger_secrets(stored, combine_shares(shares))
            report = verify_ledger(self._store, chain_id, secrets)
        except (ValueError, UnsealError, SealedStateUnreadable) as failed:
            raise InvalidRequest(f"recovery failed: {failed}; every holder submits its share again") from None
        if not report.ok:
            first = report.discrepancies[0]
            raise InvalidRequest(
                f"the restored ledger secrets open the ledger, but it does not verify (block {first.block}: "
                f"{first.problem}): recover from an intact copy"
            )
        self._keys = with_ledger_secrets(self._keys, secrets, self._keys_dir, self._measurement)
        self._issued_fingerprint = None
        self.reload_head()
        log.info("recovered: ledger secrets 0..%d restored and the ledger verified", secrets.current_version)

    # -- tracing ----------------------------------------------------------------------

    def _block_transactions(
        self, block_number: int
    ) -> tuple[list[DecodedTransaction], list[ExecutedTransaction]]:
        """Every transaction of a stored block in order, confidential ones opened (with their
        `private_for`), and the opened confidential ones."""
        found = [
            (tx.transaction_index, decode_recovered(tx.raw, tx.sender))
            for tx in self._store.transactions_of_block(block_number)
        ]
        confidential = [
            self._open(row) for row in self._store.sealed_transactions(block_number, block_number)
        ]
        for record in confidential:
            decoded = replace(decode_recovered(record.raw, record.sender), private_for=record.private_for)
            found.append((record.index, decoded))
        return [decoded for _, decoded in sorted(found, key=lambda pair: pair[0])], confidential

    def trace_block(
        self, block_number: int, options: TraceOptions, only: Hash32 | None = None, token: str | None = None
    ) -> list[TransactionTrace]:
        """Confidential transactions the reader may not see are replayed, not traced."""
        if block_number == 0:
            raise InvalidRequest("the genesis block cannot be traced: it has no parent state")
        transactions, confidential = self._block_transactions(block_number)
        may_see = self._may_see(token)
        hidden = {record.hash for record in confidential if may_see is None or not may_see(record)}
        if only is not None and only in hidden:
            raise NotFound(f"transaction 0x{only.hex()} not found")
        traces = trace_block(
            self._header_at(block_number - 1),
            self._header_at(block_number),
            transactions,
            self._params,
            self._cache,
            self._ancestors_before(block_number),
            options,
            only,
        )
        return [trace for trace in traces if trace.tx_hash not in hidden]

    def trace_call(
        self, call: CallRequest, block_number: int, options: TraceOptions, token: str | None = None
    ) -> TransactionTrace:
        return trace_call(self._call_context(block_number, token=token), call, options)

    # -- dev chains -----------------------------------------------------------------------

    @_one_block_at_a_time
    def execute_patch(self, patch: StatePatch, timestamp: int) -> ExecutionResult:
        built = build_patch_block(
            self._head_header(), patch, self._params, self._coinbase, timestamp, self._cache
        )
        return self._executed(built)

    # -- simulation -----------------------------------------------------------------------

    def simulate(
        self, request: SimulationRequest, block_number: int, token: str | None = None
    ) -> list[SimulatedBlock]:
        return list(
            simulate(
                self._header_at(block_number),
                request,
                self._params,
                self._cache,
                self._ancestors_before(block_number),
                self._reader(token),
            )
        )

    # -- block access lists ---------------------------------------------------------------

    def block_access_list(self, block_number: int) -> BlockAccessList:
        header = self._header_at(block_number)
        parent = self._header_at(block_number - 1) if block_number else None
        transactions, confidential = self._block_transactions(block_number) if block_number else ([], [])
        found = block_access_list(
            parent, header, transactions, self._params, self._cache, self._ancestors_before(block_number)
        )
        if not confidential:
            return found
        # Confidential contracts are never listed: no one but their parties may know of them.
        state = self._state_at(block_number)
        return tuple(entry for entry in found if not is_confidential(state, entry.address))

    # -- receipts anyone can verify (`ledger.receipts`, docs/receipts.md) -------------------
    # A block's roots cover its confidential transactions, so proofs are made here, where
    # they open. A proof shows the block's other transactions only as hashes of subtries.

    def transaction_proof(self, tx_hash: Hash32, token: str | None = None) -> TransactionProof | None:
        stored = self._store.transaction(tx_hash)
        if stored is not None:
            number = stored.block_number
        else:
            row = self._store.sealed_transaction(tx_hash)
            if row is None:
                return None
            may_see = self._may_see(token)
            if may_see is None or not may_see(self._open(row)):
                return None
            number = row.block_number
        block = self._store.block_by_number(number)
        if block is None:
            return None
        header = decode_header(block.header)
        hashes, transactions, receipts = self._block_entries(number)
        transaction_trie, receipt_trie = ordered_trie(transactions), ordered_trie(receipts)
        roots = (transaction_trie.root_hash, receipt_trie.root_hash)
        if roots != (header.transaction_root, header.receipt_root):
            raise RuntimeError(f"the stored transactions of block {number} do not give its header's roots")
        index = hashes.index(tx_hash)
        key = rlp.encode(index)
        return TransactionProof(
            transaction_hash=tx_hash,
            transaction=transactions[index],
            receipt=receipts[index],
            index=index,
            transaction_proof=prove_key(transaction_trie, key),
            receipt_proof=prove_key(receipt_trie, key),
            block_number=number,
            block_hash=block.hash,
            header=block.header,
        )

    def _block_entries(self, number: int) -> tuple[list[Hash32], list[bytes], list[bytes]]:
        """The hashes, encodings and receipt encodings of every transaction of a stored
        block, in order, confidential ones opened."""
        receipts = {
            receipt.transaction_index: receipt.encoded for receipt in self._store.receipts_of_block(number)
        }
        entries = [
            (tx.transaction_index, tx.hash, tx.raw, receipts[tx.transaction_index])
            for tx in self._store.transactions_of_block(number)
        ]
        for row in self._store.sealed_transactions(number, number):
            record = self._open(row)
            entries.append((row.transaction_index, record.hash, record.raw, record.receipt_rlp))
        entries.sort(key=lambda entry: entry[0])
        return (
            [entry[1] for entry in entries],
            [entry[2] for entry in entries],
            [entry[3] for entry in entries],
        )

    def governance_proof(self, block_number: int) -> GovernanceProof | None:
        blob = read_only_stores(self._state_at(block_number))[GOVERNANCE_ADDRESS].load()
        if blob is None:
            return None
        state_root = self._header_at(block_number).state_root
        proof = prove_account(state_root, self._cache, GOVERNANCE_ADDRESS, [BLOB_SLOT])
        return GovernanceProof(proof.proof, proof.storage[0].proof, blob)

    # -- receipts across a reopening --

    def reopening_record(self, block_number: int) -> bytes | None:
        reopening = stored_reopening(self._header_at(block_number), self._cache)
        return None if reopening is None else reopening.encode()
