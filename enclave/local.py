"""The enclave's work, run in the process that holds it: the enclave process (`enclave.main`),
or the node's own for tests and tools."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from eth.abc import BlockHeaderAPI, StateAPI
from eth_account import Account

from evm_runtime.block_access_list import BlockAccessList, block_access_list
from evm_runtime.block_builder import BlockEnv, BuiltBlock, build_block
from evm_runtime.calls import AccessListOutcome, CallContext, state_at
from evm_runtime.chain import (
    ChainParams,
    GenesisAccount,
    decode_header,
    encode_header,
    make_genesis,
    next_base_fee,
)
from evm_runtime.exceptions import FeeTooLow, InsufficientFunds, InvalidRequest, NotFound, NotPermitted
from evm_runtime.overrides import NO_OVERRIDES, StateOverrides
from evm_runtime.simulation import SimulatedBlock, SimulationRequest, simulate
from evm_runtime.state_db import NodeCache
from evm_runtime.state_patch import StatePatch, build_patch_block
from evm_runtime.state_proofs import AccountProof, prove_account
from evm_runtime.system_contracts import (
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
from evm_runtime.types import ZERO_ADDRESS, Address, Hash32
from governance.codec import decode_state
from governance.state import GovernanceState, NetworkConfig
from governance.system_contract import CODE_MARKER, GOVERNANCE_ADDRESS, SELECTORS, governance_state
from ledger.ordering import ExecutionResult
from ledger.store import MAX_ANCESTORS, BlockRecord, LedgerStore

from .attestation import REPORT_DATA_BYTES, make_quote, measure_enclave
from .interface import Admitted, NodeKeys
from .keystore import open_keystore, with_ledger_secrets

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
RELAY_TIP = 10**9
"""The priority fee of the transactions that relay signed governance messages (1 gwei)."""


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
        self._cache = NodeCache(store) if cache_entries is None else NodeCache(store, cache_entries)
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

    def quote(self, report_data: bytes) -> bytes:
        if len(report_data) > REPORT_DATA_BYTES:
            raise InvalidRequest(f"report data has at most {REPORT_DATA_BYTES} bytes, got {len(report_data)}")
        identity = self._keys.identity
        issued_at = int(time.time())
        return make_quote(
            self._keys.platform, self._measurement, identity.public_key, report_data, issued_at
        ).encode()

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
        return BlockRecord(
            number=0,
            hash=Hash32(header.hash),
            parent_hash=Hash32(header.parent_hash),
            header=encode_header(header),
            timestamp=header.timestamp,
            state_writes=genesis.state_writes,
        )

    def _head_header(self) -> BlockHeaderAPI:
        if self._head is None:
            stored = self._store.head()
            if stored is None:
                raise NotFound("the ledger has no genesis block yet")
            self._head = decode_header(stored.header)
            recent = self._store.ancestor_hashes(stored.number, MAX_ANCESTORS + 1)
            self._ancestors.extend(reversed(recent))
        return self._head

    def _stores(self) -> dict[Address, SystemStore]:
        if self._head_stores is None:
            self._head_stores = read_only_stores(self._latest_state())
        return self._head_stores

    def _latest_state(self) -> StateAPI:
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

    def admit(self, raw: bytes) -> Admitted:
        decoded = decode_signed_transaction(raw, self._params.chain_id)
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
        return Admitted(decoded, nonce, balance)

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

    def execute(self, batch: Sequence[DecodedTransaction], timestamp: int) -> ExecutionResult:
        parent = self._head_header()
        built = build_block(
            parent,
            batch,
            self._params,
            BlockEnv(coinbase=self._coinbase, timestamp=timestamp),
            self._cache,
            reversed(self._ancestors),
        )
        return self._executed(built)

    def _executed(self, built: BuiltBlock) -> ExecutionResult:
        header = built.header
        record = BlockRecord(
            number=header.block_number,
            hash=built.hash,
            parent_hash=Hash32(header.parent_hash),
            header=encode_header(header),
            timestamp=header.timestamp,
            transactions=built.transactions,
            state_writes=built.state_writes,
        )
        self._last_executed = (built.hash, built.state_writes)
        return ExecutionResult(block=record, dropped=built.dropped)

    def committed(self, block: BlockRecord) -> None:
        """`block` is stored: it is the new head. Its state writes warm the node cache; a
        record without them (an enclave in another process gets a slim one) uses the
        writes of the block this enclave executed last, if that is the one."""
        writes = block.state_writes
        if writes is None and self._last_executed[0] == block.hash:
            writes = self._last_executed[1]
        self._last_executed = (Hash32(b""), {})
        if writes:
            self._cache.absorb(writes)
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
        self._head = None
        self._head_state = None
        self._head_stores = None
        self._ancestors.clear()
        self._last_executed = (Hash32(b""), {})

    # -- reads ----------------------------------------------------------------------------

    def balance(self, address: Address, block_number: int) -> int:
        return self._state_at(block_number).get_balance(address)

    def nonce(self, address: Address, block_number: int) -> int:
        return self._state_at(block_number).get_nonce(address)

    def code(self, address: Address, block_number: int) -> bytes:
        return self._state_at(block_number).get_code(address)

    def storage_at(self, address: Address, slot: int, block_number: int) -> bytes:
        return self._state_at(block_number).get_storage(address, slot).to_bytes(32, "big")

    def storage_values(
        self, requests: Mapping[Address, Sequence[int]], block_number: int
    ) -> dict[Address, list[bytes]]:
        state = self._state_at(block_number)
        return {
            address: [state.get_storage(address, slot).to_bytes(32, "big") for slot in slots]
            for address, slots in requests.items()
        }

    def prove_account(self, address: Address, slots: Sequence[int], block_number: int) -> AccountProof:
        return prove_account(self._header_at(block_number).state_root, self._cache, address, slots)

    def _call_context(self, block_number: int, overrides: StateOverrides = NO_OVERRIDES) -> CallContext:
        return CallContext(
            self._header_at(block_number),
            self._params,
            self._cache,
            self._ancestors_before(block_number),
            overrides,
        )

    def _ancestors_before(self, block_number: int) -> tuple[Hash32, ...]:
        """Hashes of the blocks before `block_number`, newest first (up to 256)."""
        if block_number == self._head_header().block_number:
            return tuple(reversed(self._ancestors))[1:]
        return tuple(self._store.ancestor_hashes(block_number - 1)) if block_number else ()

    def call(self, call: CallRequest, block_number: int, overrides: StateOverrides = NO_OVERRIDES) -> bytes:
        return self._call_context(block_number, overrides).call(call).output

    def estimate_gas(
        self, call: CallRequest, block_number: int, overrides: StateOverrides = NO_OVERRIDES
    ) -> int:
        return self._call_context(block_number, overrides).estimate_gas(call)

    def create_access_list(self, call: CallRequest, block_number: int) -> AccessListOutcome:
        return self._call_context(block_number).create_access_list(call)

    # -- governance -----------------------------------------------------------------------

    def _governance(self) -> GovernanceState | None:
        return governance_state(self._stores()[GOVERNANCE_ADDRESS])

    def network_config(self) -> NetworkConfig | None:
        state = self._governance()
        return None if state is None else state.config

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

    # -- tracing --------------------------------------------------------------------------

    def trace_block(
        self, block_number: int, options: TraceOptions, only: Hash32 | None = None
    ) -> list[TransactionTrace]:
        if block_number == 0:
            raise InvalidRequest("the genesis block cannot be traced: it has no parent state")
        transactions = [
            decode_recovered(tx.raw, tx.sender) for tx in self._store.transactions_of_block(block_number)
        ]
        return trace_block(
            self._header_at(block_number - 1),
            self._header_at(block_number),
            transactions,
            self._params,
            self._cache,
            self._ancestors_before(block_number),
            options,
            only,
        )

    def trace_call(self, call: CallRequest, block_number: int, options: TraceOptions) -> TransactionTrace:
        return trace_call(self._call_context(block_number), call, options)

    # -- dev chains -----------------------------------------------------------------------

    def execute_patch(self, patch: StatePatch, timestamp: int) -> ExecutionResult:
        built = build_patch_block(
            self._head_header(), patch, self._params, self._coinbase, timestamp, self._cache
        )
        return self._executed(built)

    # -- simulation -----------------------------------------------------------------------

    def simulate(self, request: SimulationRequest, block_number: int) -> list[SimulatedBlock]:
        return list(
            simulate(
                self._header_at(block_number),
                request,
                self._params,
                self._cache,
                self._ancestors_before(block_number),
            )
        )

    # -- block access lists ---------------------------------------------------------------

    def block_access_list(self, block_number: int) -> BlockAccessList:
        header = self._header_at(block_number)
        parent = self._header_at(block_number - 1) if block_number else None
        transactions = (
            [decode_recovered(tx.raw, tx.sender) for tx in self._store.transactions_of_block(block_number)]
            if block_number
            else []
        )
        return block_access_list(
            parent, header, transactions, self._params, self._cache, self._ancestors_before(block_number)
        )
