"""Block access lists (EIP-7928), recorded by replaying a stored block.

Conclave's blocks are Prague's and carry no access list, so one is computed on demand:
the block is replayed on its parent's state as it was built (nothing is stored) and each
account and storage slot the replay reads or writes is recorded against its block access
index: 0 before the first transaction, 1..n for the transactions, n + 1 after the last.

- An account is listed if any index touched it: read its balance, nonce or code, asked
  whether it exists, or changed it (senders, recipients, call and create targets, the
  coinbase, precompiles that were called). Warming alone (EIP-2930 access lists, the
  precompiles) does not count.
- For each index, a balance, nonce or code whose value after the index differs from its
  value before it is a change, recorded with the value after.
- A slot whose value after an index differs from the one before is a write of that index;
  a slot only read, or written back to the value it had, is a read, unless some index of
  the block writes it.
- Lists are ordered: accounts by address, slots by key, changes by index.

Conclave makes no system calls before or after the transactions (no EIP-4788 beacon roots,
no EIP-2935 block hashes, no requests) and has no withdrawals, so indices 0 and n + 1 hold
nothing, except in a dev chain's state patch block, whose changes are made at index 0.
The permission checks made before each transaction (`system_contracts.refusal_of`, as the
block builder makes them) are the chain's, not the transaction's: what they read is not
listed. A transaction that calls the governance contract lists it like any contract.

The encoding is EIP-7928's RLP: [address, [[slot, [[index, value], ...]], ...], [slot, ...],
[[index, balance], ...], [[index, nonce], ...], [[index, code], ...]] per account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, StateAPI
from eth_utils import ValidationError

from .chain import VM, BlockState, ChainParams
from .confidential import PARTIES_ADDRESS, transaction_visibility
from .exceptions import InvalidRequest
from .state_db import NodeCache, StateOverlay
from .state_patch import SetStorage, StatePatch, stored_patch
from .system_contracts import refusal_of
from .transactions import DecodedTransaction
from .types import Address, Hash32

IndexedValue = tuple[int, int]
"""(block access index, value after it)."""


@dataclass(frozen=True, slots=True)
class AccountChanges:
    """One account's accesses in a block (EIP-7928's AccountChanges)."""

    address: Address
    storage_changes: tuple[tuple[int, tuple[IndexedValue, ...]], ...] = ()
    """(slot, its writes) by slot."""
    storage_reads: tuple[int, ...] = ()
    balance_changes: tuple[IndexedValue, ...] = ()
    nonce_changes: tuple[IndexedValue, ...] = ()
    code_changes: tuple[tuple[int, bytes], ...] = ()


BlockAccessList = tuple[AccountChanges, ...]


def encode_block_access_list(accesses: BlockAccessList) -> bytes:
    """EIP-7928's RLP encoding of a block access list (integers as minimal big-endian)."""
    return rlp.encode(
        [
            [
                bytes(account.address),
                [[slot, [list(change) for change in changes]] for slot, changes in account.storage_changes],
                list(account.storage_reads),
                [list(change) for change in account.balance_changes],
                [list(change) for change in account.nonce_changes],
                [[index, code] for index, code in account.code_changes],
            ]
            for account in accesses
        ]
    )


# -- recording ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Account:
    balance: int
    nonce: int
    code: bytes


_ACCOUNT_METHODS = (
    "get_balance",
    "set_balance",
    "get_nonce",
    "set_nonce",
    "increment_nonce",
    "get_code",
    "set_code",
    "get_code_hash",
    "delete_code",
    "delete_storage",
    "delete_account",
    "account_exists",
    "account_is_empty",
    "account_has_code_or_nonce",
    "touch_account",
)
_SLOT_METHODS = ("get_storage", "set_storage")


class _Recorder:
    """Wraps a state's account database to note what is touched, with its value before."""

    def __init__(self, state: StateAPI) -> None:
        accounts = state._account_db  # type: ignore[attr-defined]
        self._originals: dict[str, Callable[..., Any]] = {}
        self._quiet = False
        self.accounts: dict[Address, _Account] = {}
        self.slots: dict[tuple[Address, int], int] = {}
        for name in (*_ACCOUNT_METHODS, *_SLOT_METHODS):
            self._originals[name] = getattr(accounts, name)
            setattr(accounts, name, self._wrapped(name))

    def _wrapped(self, name: str) -> Callable[..., Any]:
        original = self._originals[name]
        with_slot = name in _SLOT_METHODS

        def recorded(address: bytes, *args: Any, **kwargs: Any) -> Any:
            if not self._quiet:
                self.see(Address(bytes(address)), args[0] if with_slot else None)
            return original(address, *args, **kwargs)

        return recorded

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Read without recording (the account database reads itself inside)."""
        previous, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = previous

    def see(self, address: Address, slot: int | None = None) -> None:
        """Note `address` (and `slot`) as touched in this index, keeping its value before."""
        with self.quiet():
            if address not in self.accounts:
                self.accounts[address] = self.read(address)
            if slot is not None and (address, slot) not in self.slots:
                self.slots[(address, slot)] = self._originals["get_storage"](address, slot)

    def read(self, address: Address) -> _Account:
        with self.quiet():
            return _Account(
                balance=self._originals["get_balance"](address),
                nonce=self._originals["get_nonce"](address),
                code=bytes(self._originals["get_code"](address)),
            )

    def read_slot(self, address: Address, slot: int) -> int:
        with self.quiet():
            return int(self._originals["get_storage"](address, slot))

    def forget(self) -> None:
        self.accounts, self.slots = {}, {}


@dataclass
class _Entry:
    writes: dict[int, list[IndexedValue]] = field(default_factory=dict)
    reads: set[int] = field(default_factory=set)
    balances: list[IndexedValue] = field(default_factory=list)
    nonces: list[IndexedValue] = field(default_factory=list)
    codes: list[tuple[int, bytes]] = field(default_factory=list)


class _Builder:
    """Gathers each index's changes into the block's access list."""

    def __init__(self) -> None:
        self._entries: dict[Address, _Entry] = {}

    def close(
        self,
        index: int,
        recorder: _Recorder,
        read: Callable[[Address], _Account],
        read_slot: Callable[[Address, int], int],
    ) -> None:
        """Record what `recorder` saw touched in `index`, `read` giving the values after it."""
        for address, before in recorder.accounts.items():
            entry = self._entries.setdefault(address, _Entry())
            after = read(address)
            if after.balance != before.balance:
                entry.balances.append((index, after.balance))
            if after.nonce != before.nonce:
                entry.nonces.append((index, after.nonce))
            if after.code != before.code:
                entry.codes.append((index, after.code))
        for (address, slot), value_before in recorder.slots.items():
            entry = self._entries.setdefault(address, _Entry())
            value_after = read_slot(address, slot)
            if value_after != value_before:
                entry.writes.setdefault(slot, []).append((index, value_after))
            else:
                entry.reads.add(slot)
        recorder.forget()

    def build(self) -> BlockAccessList:
        return tuple(
            AccountChanges(
                address=address,
                storage_changes=tuple((slot, tuple(entry.writes[slot])) for slot in sorted(entry.writes)),
                storage_reads=tuple(sorted(entry.reads - entry.writes.keys())),
                balance_changes=tuple(entry.balances),
                nonce_changes=tuple(entry.nonces),
                code_changes=tuple(entry.codes),
            )
            for address, entry in sorted(self._entries.items())
            if address != PARTIES_ADDRESS  # the registry of confidential contracts is never listed
        )


# -- replays ------------------------------------------------------------------------------


def block_access_list(
    parent: BlockHeaderAPI | None,
    header: BlockHeaderAPI,
    transactions: Sequence[DecodedTransaction],
    params: ChainParams,
    cache: NodeCache,
    ancestor_hashes: Iterable[Hash32],
) -> BlockAccessList:
    """The access list of the block `header`, replayed on `parent`'s state (None: genesis,
    which executes nothing)."""
    if parent is None:
        return ()
    patch = stored_patch(header, cache)
    if patch is not None:
        return _patch_access_list(parent, header, patch, params, cache)
    context = VM.create_execution_context(header, tuple(ancestor_hashes), params.context)
    state = BlockState(StateOverlay(cache), context, parent.state_root)
    recorder = _Recorder(state)
    builder = _Builder()
    for index, item in enumerate(transactions, start=1):
        tx = item.tx
        with recorder.quiet():
            refusal_of(state, item.sender, not tx.to)
            state.visibility = transaction_visibility(state, item.sender, tx.to or None, item.private_for)
        state.lock_changes()
        try:
            state.apply_transaction(tx)
        except ValidationError as exc:
            raise InvalidRequest(f"block {header.block_number} does not replay: {exc}") from None
        finally:
            state.visibility = None
        builder.close(index, recorder, recorder.read, recorder.read_slot)
    return builder.build()


def _patch_access_list(
    parent: BlockHeaderAPI, header: BlockHeaderAPI, patch: StatePatch, params: ChainParams, cache: NodeCache
) -> BlockAccessList:
    """A state patch block's: every patched account and slot at index 0, the values after it
    read from the block's own state."""
    before = VM.build_state(StateOverlay(cache), parent, params.context, ())
    after = VM.build_state(StateOverlay(cache), header, params.context, ())
    recorder = _Recorder(before)
    for change in patch.changes:
        recorder.see(change.address, change.slot if isinstance(change, SetStorage) else None)
    builder = _Builder()
    builder.close(
        0,
        recorder,
        lambda address: _Account(
            after.get_balance(address), after.get_nonce(address), after.get_code(address)
        ),
        lambda address, slot: after.get_storage(address, slot),
    )
    return builder.build()
