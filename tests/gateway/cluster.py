"""Validators of one network as `Node`s in this process, on one event loop, talking over
real loopback TCP (`ledger.network.Transport`): the ordering service's network paths
without process start-up costs. The process-level tests are in tests/e2e/test_network.py.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

from enclave.attestation import make_quote, measure_enclave
from enclave.keystore import ROOT_FILE, open_keystore
from enclave.local import PROJECT_ROOT, InProcessEnclave
from enclave.platform import AttestationRoot
from enclave.secret_transfer import transfer_report_data
from evm_runtime.chain import ChainParams, GenesisAccount
from evm_runtime.transactions import CallRequest
from evm_runtime.types import Address
from gateway.node import Node, NodeConfig
from governance.state import Action, GovernanceState, Member, Validator
from governance.system_contract import GOVERNANCE_ADDRESS, encode_action
from ledger.database import make_engine
from ledger.store import LedgerStore
from migrations import upgrade_to_head
from tests.evm_runtime.chainkit import ACCOUNTS, ETHER, address_of, sign

CHAIN_ID = 4242


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """N validators sharing a genesis and the ledger secrets of validator 0, and `spare`
    nodes more with keys of the same vendor root, which the genesis does not name."""

    def __init__(self, root: Path, count: int, *, spare: int = 0, round_timeout: float = 0.5) -> None:
        self.root = root
        self.count = count + spare
        self.round_timeout = round_timeout
        vendor = AttestationRoot.create()
        self.measurement = measure_enclave(PROJECT_ROOT)
        self.addresses: list[Address] = []
        self.ports = [free_port() for _ in range(self.count)]
        for i in range(self.count):
            keys = self.dir(i) / "enclave"
            keys.mkdir(parents=True)
            (keys / ROOT_FILE).write_bytes(vendor.to_bytes())
            self.addresses.append(open_keystore(keys, self.measurement).identity.address)
        self.governance = GovernanceState(
            members={address_of(ACCOUNTS[0]): Member("member")},
            validators={
                address: Validator(self.endpoint(i), b"") for i, address in enumerate(self.addresses[:count])
            },
        )
        self.nodes: list[Node | None] = [None] * self.count
        self._first_secrets_shared = False

    def dir(self, i: int) -> Path:
        return self.root / f"node{i}"

    def endpoint(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i]}"

    def quote(self, i: int) -> bytes:
        """A fresh quote of node i's enclave, as `add_validator` takes it."""
        keys = open_keystore(self.dir(i) / "enclave", self.measurement)
        public_key = keys.identity.public_key
        return make_quote(keys.platform, self.measurement, public_key, b"", int(time.time())).encode()

    def config(self, i: int) -> NodeConfig:
        return NodeConfig(
            database_url=f"sqlite:///{self.dir(i) / 'ledger.db'}",
            chain_id=CHAIN_ID,
            genesis_alloc={address_of(a): GenesisAccount(balance=100 * ETHER) for a in ACCOUNTS[:5]},
            genesis_timestamp=1_000,
            genesis_governance=self.governance,
            enclave_dir=self.dir(i) / "enclave",
            p2p_listen=("127.0.0.1", self.ports[i]),
            round_timeout=self.round_timeout,
        )

    def _adopt_secrets(self, i: int, first: Node) -> None:
        """Give node i validator 0's ledger secrets, enclave to enclave, before its genesis."""
        engine = make_engine(self.config(i).database_url)
        upgrade_to_head(engine)
        enclave = InProcessEnclave(
            LedgerStore(engine), ChainParams(chain_id=CHAIN_ID), keys_dir=self.dir(i) / "enclave"
        )
        quote = enclave.quote(transfer_report_data(CHAIN_ID))
        enclave.adopt_ledger_secrets(first.enclave.share_ledger_secrets(quote))
        engine.dispose()

    async def start(
        self,
        i: int,
        *,
        secrets_from: Node | None = None,
        sync_peers: dict[Address, tuple[str, int]] | None = None,
    ) -> Node:
        """Start validator i (made on first start, with the ledger secrets of `secrets_from`,
        by default validator 0, which starts first)."""
        if not (self.dir(i) / "ledger.db").exists() and i > 0:
            first = secrets_from or self.nodes[0]
            assert first is not None, "validator 0 starts first"
            self._adopt_secrets(i, first)
        node = Node(replace(self.config(i), sync_peers=sync_peers or {}))
        node.start()
        self.nodes[i] = node
        return node

    async def stop(self, i: int) -> None:
        node = self.nodes[i]
        if node is not None:
            self.nodes[i] = None
            await node.stop()

    async def start_all(self) -> list[Node]:
        """Start the validators the genesis names (not the spare nodes)."""
        for i in range(len(self.governance.validators)):
            await self.start(i)
        return [node for node in self.nodes if node is not None]

    async def stop_all(self) -> None:
        for i in range(self.count):
            await self.stop(i)

    def running(self) -> list[Node]:
        return [node for node in self.nodes if node is not None]

    def wipe(self, i: int) -> None:
        shutil.rmtree(self.dir(i) / "ledger.db", ignore_errors=True)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def run(test: Callable[[], Awaitable[None]], timeout: float = 90) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout))


def transfer(nonce: int, account: int = 1) -> bytes:
    return sign(ACCOUNTS[account], nonce=nonce, chainId=CHAIN_ID, value=1)


def heads(nodes: list[Node]) -> set[tuple[int, bytes]]:
    return {(node.head.number, node.head.hash) for node in nodes}


def included(node: Node, tx_hash: bytes) -> bool:
    return node.store.transaction(tx_hash) is not None


async def agree(nodes: list[Node], tx_hashes: list[bytes]) -> None:
    """Every transaction is committed on every node, and all heads are one block."""
    await eventually(lambda: all(included(node, h) for node in nodes for h in tx_hashes), what="inclusion")
    await eventually(lambda: len(heads(nodes)) == 1, what="one head")


class Governor:
    """The consortium's one member, proposing and accepting actions by transactions."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.nonce = node.pending_nonce(address_of(ACCOUNTS[0]))

    def _send(self, data: bytes) -> bytes:
        raw = sign(
            ACCOUNTS[0], nonce=self.nonce, chainId=CHAIN_ID, to=GOVERNANCE_ADDRESS, data=data, gas=3_000_000
        )
        self.nonce += 1
        return self.node.send_raw_transaction(raw)

    def _proposal_count(self) -> int:
        call = CallRequest(
            sender=address_of(ACCOUNTS[0]),
            to=GOVERNANCE_ADDRESS,
            gas=100_000,
            data=function_signature_to_4byte_selector("proposalCount()"),
        )
        (count,) = abi_decode(["uint256"], self.node.enclave.call(call, self.node.head.number))
        return int(count)

    async def enact(self, name: str, args: dict[str, Any]) -> None:
        """Propose the action, wait until it is stored, vote for it, wait for that too."""
        action = encode_action(Action(name, args))
        selector = function_signature_to_4byte_selector("propose((string,bytes)[])")
        proposed = self._send(selector + abi_encode(["(string,bytes)[]"], [[action]]))
        await eventually(lambda: included(self.node, proposed), what="the proposal")
        vote = function_signature_to_4byte_selector("vote(uint256,bool)")
        voted = self._send(vote + abi_encode(["uint256", "bool"], [self._proposal_count(), True]))
        await eventually(lambda: included(self.node, voted), what="the vote")
