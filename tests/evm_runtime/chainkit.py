"""Shared helpers for the execution tests: keys, signing, and an in-memory chain.

Nothing here does I/O: state nodes live in a dict behind a `NodeCache`, as a node's
ledger table would hold them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from evm_runtime.block_builder import BlockEnv, BuiltBlock, build_block
from evm_runtime.chain import ChainParams, GenesisAccount, make_genesis
from evm_runtime.state_db import NodeCache
from evm_runtime.transactions import DecodedTransaction, decode_signed_transaction
from evm_runtime.types import ZERO_ADDRESS, Address, Hash32

CHAIN_ID = 1337
GWEI = 10**9
ETHER = 10**18

ACCOUNTS: tuple[LocalAccount, ...] = tuple(Account.from_key(bytes([index + 1]) * 32) for index in range(6))


def recipient(index: int) -> str:
    """A (checksummed) address nobody holds a key for."""
    return to_checksum_address(f"0x{0xC0DE0000 + index:040x}")


def address_of(account: LocalAccount) -> Address:
    return Address(bytes.fromhex(account.address[2:]))


def sign(account: LocalAccount, **fields: Any) -> bytes:
    """The raw bytes of a transaction `account` signs; EIP-1559 and chain 1337 by default.

    `to=None` makes a contract creation; without `to`, the transaction pays `recipient(0)`.
    """
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": 0,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": 1 * GWEI,
        "to": recipient(0),
        "value": 0,
        "data": b"",
    }
    tx.update(fields)
    if tx["to"] is None:  # contract creation
        del tx["to"]
    if tx.get("type") in (0, 1) or "gasPrice" in fields:
        tx.pop("maxFeePerGas", None)
        tx.pop("maxPriorityFeePerGas", None)
        tx.setdefault("gasPrice", 2 * GWEI)
        if tx.get("type") == 0:
            del tx["type"]
    return bytes(account.sign_transaction(tx).raw_transaction)


def decoded(account: LocalAccount, **fields: Any) -> DecodedTransaction:
    return decode_signed_transaction(sign(account, **fields), CHAIN_ID)


def calldata(signature: str, *args: Any) -> bytes:
    """ABI-encoded call data of `signature` (e.g. "set(uint256)") with `args`."""
    types = signature[signature.index("(") + 1 : -1]
    encoded = abi_encode([t for t in types.split(",") if t], list(args)) if types else b""
    return function_signature_to_4byte_selector(signature) + encoded


class DictSource(dict):  # type: ignore[type-arg]
    """A `NodeSource` over a dict, counting reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[bytes] = []

    def get_node(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return self.get(key)


@dataclass
class MemoryChain:
    """A chain kept in memory: each built block's state writes land in the source."""

    params: ChainParams = field(default_factory=ChainParams)
    alloc: Mapping[Address, GenesisAccount] = field(default_factory=dict)
    genesis_timestamp: int = 1_000
    extra_nodes: Mapping[bytes, bytes] = field(default_factory=dict)
    """Stored with the genesis state (a system contract's blob)."""

    def __post_init__(self) -> None:
        self.source = DictSource()
        self.cache = NodeCache(self.source)
        genesis = make_genesis(
            self.params,
            self.alloc,
            self.cache,
            timestamp=self.genesis_timestamp,
            extra_nodes=self.extra_nodes,
        )
        self.source.update(genesis.state_writes)
        self.genesis = genesis.header
        self.head = genesis.header
        self.hashes: list[Hash32] = [Hash32(genesis.header.hash)]

    def build(
        self,
        batch: Sequence[DecodedTransaction],
        *,
        parent: Any = None,
        timestamp: int | None = None,
        coinbase: Address = ZERO_ADDRESS,
        commit: bool = True,
    ) -> BuiltBlock:
        parent = self.head if parent is None else parent
        env = BlockEnv(coinbase=coinbase, timestamp=parent.timestamp + 12 if timestamp is None else timestamp)
        ancestors = list(reversed(self.hashes[: parent.block_number + 1]))
        built = build_block(parent, batch, self.params, env, self.cache, ancestors)
        if commit:
            self.source.update(built.state_writes)
            self.head = built.header
            self.hashes.append(built.hash)
        return built


def funded_chain(balance: int = 1_000 * ETHER, **kwargs: Any) -> MemoryChain:
    """A chain whose genesis funds every account of `ACCOUNTS`."""
    alloc = {address_of(account): GenesisAccount(balance=balance) for account in ACCOUNTS}
    return MemoryChain(alloc=alloc, **kwargs)
