"""A node assembled from its parts: database, ledger store, enclave, pool and ordering."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import httpx
from eth_utils import to_checksum_address

from enclave.acl import may_see_pending
from enclave.interface import Admitted, EnclaveAPI, Opened, Submission
from enclave.local import InProcessEnclave
from enclave.messages import EnclaveFailure
from enclave.process import EnclaveLaunch, EnclaveProcess
from enclave.sealed_state import (
    OLDER_LEDGER,
    STATE_SEALING_FORMAT,
    STATE_SEALING_SETTING,
    SealedStateUnreadable,
)
from enclave.secret_transfer import transfer_report_data
from evm_runtime.chain import DEFAULT_CHAIN_ID, DEFAULT_GAS_LIMIT, ChainParams, GenesisAccount
from evm_runtime.exceptions import ConclaveError, NonceTooLow, NotFound
from evm_runtime.fees import DEFAULT_PRIORITY_FEE
from evm_runtime.state_patch import StatePatch
from evm_runtime.types import ZERO_ADDRESS, Address, Hash32
from governance.codec import encode_state
from governance.state import GovernanceState, Member, NetworkConfig, Validator
from ledger.database import is_in_memory, make_engine
from ledger.mempool import Mempool
from ledger.network import Endpoint, Transport, parse_endpoint
from ledger.ordering import Ordering
from ledger.store import BlockRecord, LedgerStore, LogQuery, StoredBlock
from migrations import upgrade_to_head

from .admissions import AdmissionQueue
from .caller import current_token
from .filters import FilterRegistry
from .metrics import NodeMetrics
from .params import BlockRef
from .pubsub import SubscriptionHub
from .recovery_mode import keep_recovery_set_current

log = logging.getLogger(__name__)

VERSION = version("conclave")
ENCLAVE_WATCH_SECONDS = 1.0
JOIN_TIMEOUT_SECONDS = 60.0
"""How long a joining node waits for the validator it takes the ledger secrets from."""


class EnclaveValidatorKey:
    """The enclave's node key as the consensus and transport `Signer`."""

    def __init__(self, enclave: EnclaveAPI, address: Address) -> None:
        self._enclave = enclave
        self.address = address

    def sign_hash(self, message_hash: bytes) -> bytes:
        return self._enclave.sign_as_validator(Hash32(message_hash))


DEV_NODE_BALANCE = 1_000 * 10**18
"""What a dev chain's genesis gives the node's own account (it pays to relay governance)."""


class ChainMismatch(Exception):
    """The data directory holds another chain than the one asked for."""


class LedgerUnreadable(ChainMismatch):
    """The data directory's ledger is not one this node's enclave can read: written by an
    older Conclave (state in clear), or its state sealed with other ledger secrets."""


@dataclass(frozen=True, slots=True)
class DevSnapshot:
    """What evm_snapshot saves: the head and the time offset of later blocks."""

    block_number: int
    time_offset: int


@dataclass(frozen=True)
class NodeConfig:
    database_url: str
    chain_id: int = DEFAULT_CHAIN_ID
    gas_limit: int = DEFAULT_GAS_LIMIT
    block_time: float | None = None
    genesis_alloc: Mapping[Address, GenesisAccount] = field(default_factory=dict)
    genesis_timestamp: int | None = None
    coinbase: Address = ZERO_ADDRESS
    dev_accounts: tuple[Address, ...] = ()
    dev_keys: tuple[bytes, ...] = ()
    """Private keys of the dev accounts, which a dev node signs with (eth_sendTransaction)."""
    max_log_results: int = 10_000
    max_log_block_range: int = 100_000
    pool_size: int = 10_000
    dev_mode: bool = False
    """Serve the dev-only methods (unlocked accounts, evm_*, anvil_*): `conclave dev` only."""
    enclave_mode: Literal["in-process", "process"] = "in-process"
    """Where the enclave runs: this process (tests, tools) or its own OS process (nodes)."""
    enclave_dir: Path | None = None
    """Where the enclave keeps its sealed keys (None: new keys in memory at every start)."""
    genesis_governance: GovernanceState | None = None
    """The consortium at genesis (a dev node's default: its first dev account alone). If it
    names no validators, this node is its one validator; validators named without a
    measurement run this node's."""
    p2p_listen: Endpoint | None = None
    """Where this validator listens for the others (None: it talks to no other validator)."""
    round_timeout: float = 1.0
    """Seconds of a consensus round 0; later rounds double it."""
    join_url: str | None = None
    """A validator's URL to fetch the network's ledger secrets from before genesis (a node
    joining a network whose governance already names it); decided blocks come from it too."""
    sync_peers: Mapping[Address, Endpoint] = field(default_factory=dict)
    """Peers to fetch decided blocks from besides the validators at the head (the `join`
    validator is one: after a reopening, docs/recovery.md, the validators named at an old
    head are gone)."""


class Node:
    """One validator: admits transactions, orders them into blocks, answers reads."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.params = ChainParams(chain_id=config.chain_id, gas_limit=config.gas_limit)
        self.engine = make_engine(config.database_url)
        upgrade_to_head(self.engine)
        self.store = LedgerStore(self.engine)
        self.metrics = NodeMetrics()
        self.enclave: EnclaveAPI = self._open_enclave()
        self.pool = Mempool(max_transactions=config.pool_size)
        self.filters = FilterRegistry()
        self.pubsub = SubscriptionHub()
        self._pending_audiences: dict[bytes, frozenset[Address]] = {}
        """Who may see each waiting confidential transaction (`enclave.acl.may_see_pending`)."""
        self.dev_snapshots: dict[int, DevSnapshot] = {}
        """evm_snapshot ids and what each saved (dev chains)."""
        self.metrics.gauge("conclave_pool_transactions", "Transactions in the pool.", lambda: len(self.pool))
        self.metrics.gauge("conclave_latest_block", "Number of the latest block.", lambda: self._head.number)
        self.metrics.gauge(
            "conclave_websocket_clients", "Open WebSocket connections.", lambda: len(self.pubsub)
        )
        self._ensure_genesis()
        self.address = self.enclave.node_keys().address
        self.transport: Transport | None = None
        if config.p2p_listen is not None:
            self.transport = Transport(
                self.address,
                EnclaveValidatorKey(self.enclave, self.address),
                {},
                lambda sender, payload: self.ordering.on_message(sender, payload),
                chain_id=config.chain_id,
                listen=config.p2p_listen,
            )
        self.ordering = Ordering(
            self.store,
            self.pool,
            self.enclave,
            EnclaveValidatorKey(self.enclave, self.address),
            self._validators_at_head,
            network=self.transport,
            sync_peers={**config.sync_peers, **(self._join_peer(config.join_url) if config.join_url else {})},
            block_time=config.block_time,
            round_timeout=config.round_timeout,
            on_block=self._on_block,
            on_transaction=self._on_forwarded,
            execute_apart=isinstance(self.enclave, EnclaveProcess),
            admissions_pending=lambda: self._admissions is not None and self._admissions.pending,
        )
        self.metrics.consensus(
            self.ordering.status, lambda: None if self.transport is None else self.transport.stats()
        )
        self._head: StoredBlock = self._load_head()
        self.network_config: NetworkConfig | None = None
        """What governance configures at the head (None: no governance)."""
        self._follow_network_config()
        keep_recovery_set_current(self.enclave, self.engine)  # disaster recovery (docs/recovery.md)
        self._head_changes = 0
        """Counts blocks stored and rewinds: admissions compare it before and after their call."""
        self._admissions: AdmissionQueue[bytes] | None = None
        if isinstance(self.enclave, EnclaveProcess):  # in-process, an admission is no round trip
            self._admissions = AdmissionQueue(
                self.enclave.admit_many, self._settle_admissions, lambda: self._head_changes
            )
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------

    def _open_enclave(self) -> EnclaveAPI:
        config = self.config
        if config.enclave_mode == "in-process":
            return InProcessEnclave(
                self.store,
                self.params,
                coinbase=config.coinbase,
                keys_dir=config.enclave_dir,
                renew_foreign_keys=config.dev_mode,
            )
        if is_in_memory(config.database_url):
            raise ValueError("an in-memory database cannot be shared with an enclave process")
        if config.enclave_dir is None:
            raise ValueError(
                "an enclave process keeps its keys in an enclave directory (the state it seals "
                "must stay readable when it restarts): set enclave_dir"
            )
        launch = EnclaveLaunch(
            config.database_url,
            self.params,
            config.coinbase,
            keys_dir=config.enclave_dir,
            renew_foreign_keys=config.dev_mode,
        )
        return EnclaveProcess(launch, observe=self.metrics.observe_enclave_call)  # type: ignore[return-value]

    def _genesis_governance(self) -> bytes | None:
        """The encoded governance state at genesis, with this node as its validator, its code
        as the approved code and its attestation root as trusted; None if no one governs."""
        state = self.config.genesis_governance
        if state is None and self.config.dev_mode and self.config.dev_accounts:
            state = GovernanceState(members={self.config.dev_accounts[0]: Member("dev member")})
        if state is None:
            return None
        measurement, keys = self.enclave.measurement, self.enclave.node_keys()
        validators = {
            address: replace(validator, measurement=validator.measurement or measurement)
            for address, validator in state.validators.items()
        } or {keys.address: Validator("genesis", measurement)}
        return encode_state(
            replace(
                state,
                validators=validators,
                measurements=state.measurements | {measurement},
                attestation_roots=state.attestation_roots | {keys.attestation_root},
                config=replace(state.config, block_gas_limit=self.params.gas_limit),
            )
        )

    def _validators_at_head(self) -> dict[Address, Endpoint | None]:
        """The validators governance names at the head (this node alone if no one governs)."""
        named = self.enclave.validators()
        if not named:
            return {self.address: None}
        return {address: parse_endpoint(endpoint) for address, endpoint in named.items()}

    def _join(self, url: str) -> None:
        """Take the network's ledger secrets from the validator at `url` (retrying while it
        does not answer), so this node's enclave reads and writes what the others do."""
        quote = self.enclave.quote(transfer_report_data(self.params.chain_id))
        deadline = time.monotonic() + JOIN_TIMEOUT_SECONDS
        while True:
            try:
                answer = httpx.post(
                    f"{url.rstrip('/')}/node/ledger-secrets", json={"quote": "0x" + quote.hex()}
                )
            except httpx.TransportError as failed:
                if time.monotonic() > deadline:
                    raise ChainMismatch(
                        f"{url} does not answer ({failed}): start that validator first"
                    ) from None
                time.sleep(0.5)
                continue
            if answer.status_code != 200:
                reason = answer.json().get("detail", answer.text) if answer.content else answer.reason_phrase
                raise ChainMismatch(f"{url} does not share the ledger secrets with this node: {reason}")
            self.enclave.adopt_ledger_secrets(bytes.fromhex(answer.json()["wrapped"][2:]))
            return

    def _join_peer(self, url: str) -> dict[Address, Endpoint]:
        """The validator at `url` as a peer to fetch decided blocks from, whatever the
        validators at this node's head say (after a reopening, docs/recovery.md, those are
        gone); none if it does not answer now (the validators at the head remain)."""
        try:
            status = httpx.get(f"{url.rstrip('/')}/node/status", timeout=5).json()
            address = Address(bytes.fromhex(status["enclave"]["validatorAddress"][2:]))
            endpoint = parse_endpoint(status["consensus"]["p2p"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as failed:
            log.warning("%s tells no p2p endpoint (%s): blocks come from the validators", url, failed)
            return {}
        if endpoint is None or address == self.address:
            return {}
        host, port = endpoint
        if host in ("0.0.0.0", "::"):  # it listens everywhere: dial it where it answered
            host = httpx.URL(url).host
        return {address: (host, port)}

    def _ensure_genesis(self) -> None:
        settings = self.store.settings()
        if not settings and self.config.join_url is not None:
            self._join(self.config.join_url)
        if not settings:
            timestamp = self.config.genesis_timestamp
            alloc = dict(self.config.genesis_alloc)
            if self.config.dev_mode:  # the node relays signed governance messages from its account
                alloc.setdefault(self.enclave.node_keys().address, GenesisAccount(balance=DEV_NODE_BALANCE))
            genesis = self.enclave.create_genesis(
                alloc,
                int(time.time()) if timestamp is None else timestamp,
                self._genesis_governance(),
            )
            self.store.append_block(
                genesis,
                settings={
                    "chain_id": str(self.params.chain_id),
                    "genesis_hash": genesis.hash.hex(),
                    STATE_SEALING_SETTING: STATE_SEALING_FORMAT,
                },
            )
            self.enclave.committed(genesis)
            return
        stored_chain_id = int(settings["chain_id"])
        if stored_chain_id != self.params.chain_id:
            raise ChainMismatch(
                f"the database holds chain {stored_chain_id}, not {self.params.chain_id}: "
                "pass the same --chain-id, or use another --data-dir"
            )
        if settings.get(STATE_SEALING_SETTING) != STATE_SEALING_FORMAT:
            raise LedgerUnreadable(OLDER_LEDGER)
        try:
            self.enclave.network_config()  # reads the head's state: the enclave unseals it
        except (SealedStateUnreadable, EnclaveFailure) as unreadable:
            raise LedgerUnreadable(str(unreadable)) from unreadable

    def _load_head(self) -> StoredBlock:
        head = self.store.head()
        assert head is not None, "genesis is stored before the head is read"
        return head

    def _follow_network_config(self) -> None:
        """Apply what governance configures at the head: the block time, the request size."""
        self.network_config = self.enclave.network_config()
        if self.network_config is not None:
            self.ordering.min_interval = self.network_config.block_time_ms / 1000

    def max_request_bytes(self, node_limit: int) -> int:
        """The largest request this node takes: its own limit, or the network's if lower."""
        if self.network_config is None:
            return node_limit
        return min(node_limit, self.network_config.max_request_bytes)

    def _remember_audience(self, tx_hash: bytes, audience: frozenset[Address]) -> None:
        if len(self._pending_audiences) >= self.config.pool_size:  # drop those no longer waiting
            self._pending_audiences = {
                known: who
                for known, who in self._pending_audiences.items()
                if self.pool.get(known) is not None
            }
        self._pending_audiences[tx_hash] = audience

    def _on_block(self, block: BlockRecord) -> None:
        self._head_changes += 1
        for tx in block.transactions:
            self._pending_audiences.pop(tx.hash, None)
        self._follow_network_config()
        keep_recovery_set_current(self.enclave, self.engine)  # disaster recovery (docs/recovery.md)
        self._head = StoredBlock(
            number=block.number,
            hash=block.hash,
            parent_hash=block.parent_hash,
            header=block.header,
            timestamp=block.timestamp,
            transaction_count=len(block.transactions),
        )
        self.filters.on_block(block.hash)
        self.pubsub.on_block(
            block,
            lambda token: [
                opened.record
                for opened in self.enclave.confidential_transactions(block.number, block.number, token)
            ],
        )
        self.metrics.observe_block(len(block.transactions))
        log.info("block %d %s: %d transactions", block.number, block.hash.hex(), len(block.transactions))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run_ordering())
        if isinstance(self.enclave, EnclaveProcess):
            self._watchdog = loop.create_task(self._watch_enclave(self.enclave))

    async def _run_ordering(self) -> None:
        """Listen for the other validators, then order blocks; a failure is logged, and
        `/node/status` reports the node unhealthy."""
        try:
            if self.transport is not None:
                await self.transport.start()
            await self.ordering.run()
        except Exception:
            log.exception("the ordering service stopped")
            raise

    async def _watch_enclave(self, enclave: EnclaveProcess) -> None:
        """Restart the enclave process soon after it dies, even while no call needs it."""
        while True:
            await asyncio.sleep(ENCLAVE_WATCH_SECONDS)
            if not enclave.status()["alive"]:
                await asyncio.to_thread(enclave.ensure_running)

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.transport is not None:
            await self.transport.stop()
        if isinstance(self.enclave, EnclaveProcess):
            self.enclave.close()
        self.store.close()
        self.engine.dispose()

    def status(self) -> dict[str, object]:
        """Health and identity, as `/node/status` shows them."""
        ordering_failed = self._task is not None and self._task.done() and not self._task.cancelled()
        enclave = self._enclave_status()
        head = self._head
        return {
            "status": "unhealthy" if ordering_failed or enclave.get("alive") is False else "healthy",
            "version": VERSION,
            "chainId": self.params.chain_id,
            "latestBlock": {
                "number": head.number,
                "hash": "0x" + head.hash.hex(),
                "timestamp": head.timestamp,
            },
            "pool": {"transactions": len(self.pool)},
            "enclave": enclave,
            "consensus": self.consensus_status(),
        }

    def consensus_status(self) -> dict[str, object]:
        """Where consensus stands and how the links to the other validators are."""
        status = self.ordering.status()
        status["validators"] = [to_checksum_address(v) for v in self.ordering.validators]
        if status["proposer"] is not None:
            status["proposer"] = to_checksum_address(status["proposer"])  # type: ignore[arg-type]
        if self.transport is not None:
            stats = self.transport.stats()
            host, port = self.transport.listen_address
            status["p2p"] = f"{host}:{port}"
            status["peers"] = {
                to_checksum_address(peer): {"connected": peer_stats.connected}
                for peer, peer_stats in stats.peers.items()
            }
        return status

    def _enclave_status(self) -> dict[str, object]:
        status: dict[str, object] = (
            self.enclave.status()
            if isinstance(self.enclave, EnclaveProcess)
            else {"mode": "in-process", "measurement": "0x" + self.enclave.measurement.hex()}
        )
        if status.get("alive", True):
            status["validatorAddress"] = to_checksum_address(self.enclave.node_keys().address)
        return status

    # -- reads ------------------------------------------------------------------------

    @property
    def head(self) -> StoredBlock:
        return self._head

    def find_block(self, ref: BlockRef) -> StoredBlock | None:
        """The block `ref` names, or None if there is no such block."""
        if ref.hash is not None:
            return self.store.block_by_hash(ref.hash)
        if ref.tag == "earliest":
            return self.store.block_by_number(0)
        if ref.tag is not None:
            return self._head
        assert ref.number is not None
        if ref.number == self._head.number:
            return self._head
        if ref.number > self._head.number:
            return None
        return self.store.block_by_number(ref.number)

    def block(self, ref: BlockRef) -> StoredBlock:
        """The block `ref` names; NotFound if there is none."""
        found = self.find_block(ref)
        if found is None:
            what = f"0x{ref.hash.hex()}" if ref.hash is not None else str(ref.number)
            raise NotFound(f"block {what} not found (the latest block is {self._head.number})")
        return found

    def block_number_of(self, ref: BlockRef) -> int:
        if ref.tag is not None and ref.tag != "earliest":
            return self._head.number
        if ref.number is not None and ref.number <= self._head.number:
            return ref.number
        return self.block(ref).number

    def block_gas_limit(self) -> int:
        """The next block's gas limit: governance's, or the chain's without governance."""
        return self.params.gas_limit if self.network_config is None else self.network_config.block_gas_limit

    def minimum_gas_price(self) -> int:
        """The lowest fee cap a transaction may offer (governance's `min_gas_price`)."""
        return 0 if self.network_config is None else self.network_config.min_gas_price

    def suggested_tip(self) -> int:
        """The priority fee the node suggests: none when governance makes gas free."""
        free = self.network_config is not None and self.network_config.free_gas
        return 0 if free else DEFAULT_PRIORITY_FEE

    # -- confidential reads (the enclave opens what the caller may see) ------------------

    def confidential_transaction(self, tx_hash: bytes) -> Opened | None:
        """The stored confidential transaction `tx_hash`, opened, if the caller may see it.
        Anonymous callers see none."""
        token = current_token()
        if token is None or self.store.sealed_transaction(tx_hash) is None:
            return None
        return self.enclave.confidential_transaction(Hash32(tx_hash), token)

    def confidential_transactions(self, first: int, last: int, logs: LogQuery | None = None) -> list[Opened]:
        """The confidential transactions of blocks `first`..`last` the caller may see, opened
        (with `logs`: only those with a log it matches). Anonymous callers see none."""
        token = current_token()
        if token is None or not self.store.has_sealed_transactions(first, last):
            return []
        return self.enclave.confidential_transactions(first, last, token, logs)

    def _viewer_or_none(self, token: str | None) -> Address | None:
        """Who `token` names; None if it names no one any more (expired)."""
        try:
            return self.enclave.viewer(token)
        except ConclaveError:
            return None

    def caller(self) -> Address | None:
        """Who the caller is signed in as (None: anonymous, or a token that expired)."""
        return self._viewer_or_none(current_token())

    def may_see_pending(self, tx_hash: bytes) -> bool:
        """Whether the caller may see the waiting transaction `tx_hash`."""
        audience = self._pending_audiences.get(tx_hash)
        if audience is None:
            return True
        return may_see_pending(self.caller(), audience)

    def pending_nonce(self, address: Address) -> int:
        return self.pool.next_nonce(address, self.enclave.account_nonce(address))

    # -- dev chains ---------------------------------------------------------------------

    def rewind_to(self, block_number: int) -> None:
        """Cut the chain back to `block_number` (dev chains only): later blocks, their
        transactions and every waiting transaction are gone."""
        self.store.truncate_after(block_number)
        self.enclave.reload_head()
        self.pool.clear()
        self._head_changes += 1
        self._head = self._load_head()
        self.ordering.reset()

    def patch_state(self, patch: StatePatch) -> BlockRecord:
        """Seal a block of no transactions whose state carries `patch` (dev chains only;
        `evm_runtime.state_patch` says how it stays verifiable)."""
        touched = [change.address for change in patch.changes]
        return self.ordering.seal_made(
            lambda timestamp: self.enclave.execute_patch(patch, timestamp), touched
        )

    # -- writes -----------------------------------------------------------------------

    def relay_governance(self, calldata: bytes) -> bytes:
        """Send a member's signed governance message from the node's account; its hash."""
        nonce = self.pending_nonce(self.enclave.node_keys().address)
        return self.send_raw_transaction(self.enclave.relay_governance(calldata, nonce))

    def send_raw_transaction(self, raw: bytes, private_for: Sequence[Address] | None = None) -> bytes:
        """Admit a signed transaction into the pool, as confidential to `private_for` if
        given (the caller must be signed in as its sender); return its hash."""
        return self._accept(self.enclave.admit(raw, private_for, current_token()))

    async def send_raw_transaction_later(
        self, raw: bytes, private_for: Sequence[Address] | None = None
    ) -> bytes:
        """`send_raw_transaction` for a caller on the event loop. With the enclave in a
        process of its own, the loop goes on serving while the transaction is admitted:
        transactions that arrive meanwhile are admitted together in the next call
        (`gateway.admissions`), each with its own `private_for` and caller's token, each
        caller answered with its own hash or error."""
        if self._admissions is None:
            return self.send_raw_transaction(raw, private_for)
        parties = None if private_for is None else tuple(private_for)
        return await self._admissions.admit(Submission(raw, parties, current_token()))

    def _settle_admissions(
        self, outcomes: Sequence[Admitted | ConclaveError], epoch: int
    ) -> list[bytes | ConclaveError]:
        """Pool what one `admit_many` call admitted, in order; per transaction its hash or
        its error. If a block was stored while the call was in flight (`epoch` changed), the
        nonces were checked before that block: a transaction whose nonce the block used
        leaves the pool at once, and its caller hears "nonce too low", as it would have
        from an admission after the block."""
        results: list[bytes | ConclaveError] = []
        for outcome in outcomes:
            try:
                results.append(outcome if isinstance(outcome, ConclaveError) else self._accept(outcome))
            except ConclaveError as refused:
                results.append(refused)
        senders = list({outcome.transaction.sender for outcome in outcomes if isinstance(outcome, Admitted)})
        if epoch == self._head_changes or not senders:
            return results
        nonces = dict(zip(senders, self.enclave.account_nonces(senders), strict=True))
        stale = set(self.pool.prune_stale(senders, nonces.__getitem__))
        return [
            NonceTooLow(f"nonce too low: a block stored meanwhile used nonce {outcome.transaction.nonce}")
            if isinstance(outcome, Admitted) and result in stale
            else result
            for outcome, result in zip(outcomes, results, strict=True)
        ]

    def _accept(self, admitted: Admitted) -> bytes:
        """Pool a transaction the enclave admitted and forward it; its hash."""
        self._pool_admitted(admitted)
        self.ordering.forward(admitted.forward)
        return admitted.transaction.hash

    def _on_forwarded(self, data: bytes) -> None:
        """Another validator admitted a transaction: it waits here too."""
        try:
            self._pool_admitted(self.enclave.admit_forwarded(data))
        except ConclaveError as refused:  # known already, or no longer admissible here
            log.debug("forwarded transaction not admitted: %s", refused)

    def _pool_admitted(self, admitted: Admitted) -> None:
        decoded = admitted.transaction
        self.pool.add(decoded, admitted.account_nonce, admitted.balance)
        audience = admitted.audience
        if audience is None:
            self.filters.on_pending(decoded.hash)
            self.pubsub.on_pending(decoded)
        else:  # shown to its audience only
            self._remember_audience(decoded.hash, audience)
            self.filters.on_pending(decoded.hash, lambda viewer: may_see_pending(viewer, audience))
            self.pubsub.on_pending(
                decoded, lambda token: may_see_pending(self._viewer_or_none(token), audience)
            )
        self.ordering.notify()
