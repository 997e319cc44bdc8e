"""The world state at rest: every state node is stored sealed with the ledger secrets.

The state trie's nodes, contract code and system contracts' blobs are stored in the
ledger's `state_nodes` table under their keccak hash. The keys stay the plaintext hashes
(the state root and the block hash do not change); the values are sealed with the ledger
secrets (`LedgerSecrets.seal`: AES-256-GCM under the current secret, naming its version,
so nodes sealed before a rotation stay readable), for the purpose
`conclave/state-node/v1/` + key: a value moved under another key does not unseal. So the
database never holds state, confidential contracts' code and storage included, in clear.

The enclave seals what it writes (`seal_writes`, on the block record that crosses to the
host) and unseals what it reads (`SealedNodes`, the source behind its plaintext
`NodeCache`). `evm_runtime` knows nothing of this: it reads and writes plaintext nodes.

A ledger records that its state is sealed in the chain setting `state_sealing`, written
with its genesis block; a node refuses a ledger without it (written before sealing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from evm_runtime.state_db import NodeSource

from .attestation import measure_enclave
from .keystore import IDENTITY_FILE, LEDGER_SECRETS_FILE, PLATFORM_FILE, open_keystore
from .sealing import LedgerSecrets, UnsealError

STATE_NODE_PURPOSE = b"conclave/state-node/v1/"
STATE_SEALING_SETTING = "state_sealing"
"""The chain setting that says how the ledger's state nodes are stored."""
STATE_SEALING_FORMAT = "1"
"""Sealed with the ledger secrets, for `STATE_NODE_PURPOSE` + key (the only format)."""
OLDER_LEDGER = "this ledger was written by an older Conclave without sealed state: start a new --data-dir"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SealedStateUnreadable(Exception):
    """A stored state node that the ledger secrets at hand do not unseal."""


class LedgerSecretsMissing(Exception):
    """No ledger secrets where a node's enclave keeps them."""


def state_node_purpose(key: bytes) -> bytes:
    """The associated data a state node is sealed for: it binds the value to its key."""
    return STATE_NODE_PURPOSE + key


def seal_node(secrets: LedgerSecrets, key: bytes, value: bytes) -> bytes:
    return secrets.seal(value, state_node_purpose(key))


def unseal_node(secrets: LedgerSecrets, key: bytes, blob: bytes) -> bytes:
    """The plaintext of the node stored under `key`; SealedStateUnreadable if it does not unseal."""
    try:
        return secrets.unseal(blob, state_node_purpose(key))
    except UnsealError as reason:
        raise SealedStateUnreadable(
            f"state node {key.hex()} does not unseal with this enclave's ledger secrets ({reason}): "
            "the ledger was sealed by an enclave holding other secrets (or the node was altered). "
            "Run the node with the enclave directory that wrote this ledger (a backup is restored "
            "together with it), or start a new --data-dir"
        ) from None


def seal_writes(secrets: LedgerSecrets, writes: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """A block's state writes as they are stored: each value sealed for its key."""
    return {key: seal_node(secrets, key, value) for key, value in writes.items()}


class SealedNodes:
    """A `NodeSource` over the ledger's stored nodes that unseals what it reads.

    `secrets` returns the enclave's ledger secrets at the time of the read: they rotate.
    """

    def __init__(self, store: NodeSource, secrets: Callable[[], LedgerSecrets]) -> None:
        self._store = store
        self._secrets = secrets

    def get_node(self, key: bytes) -> bytes | None:
        blob = self._store.get_node(key)
        if blob is None:
            return None
        return unseal_node(self._secrets(), key, blob)


def node_ledger_secrets(enclave_dir: Path) -> LedgerSecrets:
    """The ledger secrets a node's enclave keeps in `enclave_dir`, opened as that enclave
    would (the measurement of this code): what offline tools unseal its ledger with.

    Nothing is created: LedgerSecretsMissing if the directory holds none; KeystoreLocked if
    they were sealed by other enclave code or on another platform."""
    kept = (PLATFORM_FILE, IDENTITY_FILE, LEDGER_SECRETS_FILE)
    if not all((enclave_dir / name).is_file() for name in kept):
        raise LedgerSecretsMissing(
            f"no ledger secrets in {enclave_dir}: the state is sealed with the secrets of the node's "
            "enclave, kept in its data directory's `enclave` folder; restore that folder with the "
            "ledger (or pass the node's --data-dir)"
        )
    return open_keystore(enclave_dir, measure_enclave(PROJECT_ROOT)).ledger_secrets


__all__ = [
    "OLDER_LEDGER",
    "STATE_NODE_PURPOSE",
    "STATE_SEALING_FORMAT",
    "STATE_SEALING_SETTING",
    "LedgerSecretsMissing",
    "SealedNodes",
    "SealedStateUnreadable",
    "node_ledger_secrets",
    "seal_node",
    "seal_writes",
    "state_node_purpose",
    "unseal_node",
]
