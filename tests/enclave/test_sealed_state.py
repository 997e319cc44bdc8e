"""The world state is stored sealed: nodes unseal only for their key, with the ledger
secrets (old versions too), and the database file never holds state in clear."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from sqlalchemy import text

from enclave.sealed_state import (
    OLDER_LEDGER,
    STATE_SEALING_SETTING,
    LedgerSecretsMissing,
    SealedNodes,
    SealedStateUnreadable,
    node_ledger_secrets,
    seal_writes,
    unseal_node,
)
from enclave.sealing import LedgerSecrets
from evm_runtime.chain import GenesisAccount
from evm_runtime.state_db import NodeCache
from gateway.node import LedgerUnreadable, Node, NodeConfig
from governance.system_contract import GOVERNANCE_ADDRESS
from tests.e2e.chain_helpers import run_conclave
from tests.evm_runtime.chainkit import ACCOUNTS, CHAIN_ID, ETHER, DictSource, address_of, sign
from tests.gateway.inprocess import call

ALICE, BOB = ACCOUNTS[:2]
NODES = {keccak(value): value for value in (b"\xc2\x01\x02", b"leaf of a trie", b"\x60\x00" * 40)}

# -- sealing and unsealing ------------------------------------------------------------------


def test_sealed_writes_read_back_through_the_unsealing_source() -> None:
    secrets = LedgerSecrets.create()
    stored = DictSource(seal_writes(secrets, NODES))
    assert stored.keys() == NODES.keys(), "keys stay the plaintext hashes"
    for key, value in NODES.items():
        assert value not in stored[key] and len(stored[key]) == len(value) + 33
    nodes = SealedNodes(stored, lambda: secrets)
    assert {key: nodes.get_node(key) for key in NODES} == NODES
    assert nodes.get_node(b"\x00" * 32) is None


def test_sealing_twice_gives_different_blobs() -> None:
    secrets = LedgerSecrets.create()
    assert seal_writes(secrets, NODES) != seal_writes(secrets, NODES)


def test_a_value_moved_under_another_key_does_not_unseal() -> None:
    secrets = LedgerSecrets.create()
    first, second = list(NODES)[:2]
    stored = DictSource(seal_writes(secrets, NODES))
    stored[first] = stored[second]
    with pytest.raises(SealedStateUnreadable, match=first.hex()):
        SealedNodes(stored, lambda: secrets).get_node(first)


def test_a_changed_byte_does_not_unseal() -> None:
    secrets = LedgerSecrets.create()
    key = next(iter(NODES))
    blob = bytearray(seal_writes(secrets, NODES)[key])
    blob[-1] ^= 1
    with pytest.raises(SealedStateUnreadable):
        unseal_node(secrets, key, bytes(blob))


def test_nodes_sealed_before_a_rotation_still_read() -> None:
    before = LedgerSecrets.create()
    stored = DictSource(seal_writes(before, NODES))
    after = before.rotated()
    newer = {keccak(b"written after the rotation"): b"written after the rotation"}
    stored.update(seal_writes(after, newer))
    assert stored[next(iter(newer))][:4] == (1).to_bytes(4, "big")
    current = [before]
    nodes = SealedNodes(stored, lambda: current[0])
    current[0] = after  # the provider answers the secrets of the moment
    assert {key: nodes.get_node(key) for key in (*NODES, *newer)} == {**NODES, **newer}
    with pytest.raises(SealedStateUnreadable, match="version 1 is not known"):
        SealedNodes(stored, lambda: before).get_node(next(iter(newer)))


def test_another_enclaves_secrets_do_not_unseal_and_say_what_to_do() -> None:
    stored = DictSource(seal_writes(LedgerSecrets.create(), NODES))
    other = LedgerSecrets.create()
    cache = NodeCache(SealedNodes(stored, lambda: other))
    with pytest.raises(SealedStateUnreadable, match="enclave directory that wrote this ledger"):
        cache.get(next(iter(NODES)))


def test_missing_ledger_secrets_are_named_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(LedgerSecretsMissing, match=str(tmp_path / "enclave")):
        node_ledger_secrets(tmp_path / "enclave")
    assert not (tmp_path / "enclave").exists()


# -- a node's database ----------------------------------------------------------------------

SEED = b"conclave: the sealed-state seed."
MARKER = keccak(SEED)
"""What the contract stores and holds in its code: computed by its constructor, so that
the marker is in no transaction, only in the state."""
RUNTIME = b"\x7f" + MARKER + bytes.fromhex("60005260206000f3")
"""PUSH32 MARKER, MSTORE at 0, RETURN 32 bytes: a call answers the marker."""
INIT = (
    b"\x7f" + SEED + bytes.fromhex("600052")  # mem[0:32] = SEED
    + bytes.fromhex("60206000" "20")  # keccak(mem[0:32]): MARKER
    + bytes.fromhex("80" "6000" "55")  # storage[0] = MARKER
    + bytes.fromhex("607f" "6000" "53")  # mem[0] = PUSH32
    + bytes.fromhex("6001" "52")  # mem[1:33] = MARKER
    + b"\x7f" + RUNTIME[33:].ljust(32, b"\x00") + bytes.fromhex("6021" "52")  # mem[33:] = the rest
    + bytes([0x60, len(RUNTIME)]) + bytes.fromhex("6000" "f3")  # return mem[0:41]: RUNTIME
)  # fmt: skip


def _node(data_dir: Path, enclave_dir: Path | None = None, **config: object) -> Node:
    alloc = {address_of(account): GenesisAccount(balance=100 * ETHER) for account in (ALICE, BOB)}
    return Node(
        NodeConfig(
            database_url=f"sqlite:///{data_dir / 'ledger.sqlite'}",
            chain_id=CHAIN_ID,
            genesis_alloc=alloc,
            enclave_dir=enclave_dir or data_dir / "enclave",
            dev_accounts=(address_of(ALICE), address_of(BOB)),
            dev_keys=(bytes(ALICE.key), bytes(BOB.key)),
            **config,  # type: ignore[arg-type]
        )
    )


def _close(node: Node) -> None:
    node.store.close()
    node.engine.dispose()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[Node, str]]:
    """A node in `tmp_path` that deployed the marker contract; the contract's address."""
    node = _node(tmp_path)
    deploy = sign(ALICE, nonce=0, to=None, data=INIT, gas=200_000)
    node.send_raw_transaction(deploy)
    node.ordering.seal()
    receipt = call(node, "eth_getTransactionReceipt", "0x" + keccak(deploy).hex())
    assert receipt["status"] == "0x1", receipt
    yield node, receipt["contractAddress"]
    _close(node)


def _database_bytes(data_dir: Path) -> bytes:
    files = [data_dir / "ledger.sqlite", data_dir / "ledger.sqlite-wal"]
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_the_database_never_holds_state_in_clear(chain: tuple[Node, str], tmp_path: Path) -> None:
    node, contract = chain
    assert call(node, "eth_getCode", contract, "latest") == "0x" + RUNTIME.hex()
    assert call(node, "eth_getStorageAt", contract, "0x0", "latest") == "0x" + MARKER.hex()
    assert call(node, "eth_call", {"to": contract}, "latest") == "0x" + MARKER.hex()

    # The state does hold both in clear: this scan would find them if they were stored so.
    secrets = node_ledger_secrets(tmp_path / "enclave")
    plaintext = [unseal_node(secrets, key, blob) for key, blob in node.store.state_nodes()]
    assert any(MARKER in value for value in plaintext if value != RUNTIME)
    assert RUNTIME in plaintext

    assert (tmp_path / "ledger.sqlite-wal").stat().st_size > 0, "the blocks are still in the WAL"
    for stored in (_database_bytes(tmp_path), None):
        if stored is None:  # and once checkpointed into the database file
            _close(node)
            stored = _database_bytes(tmp_path)
        assert MARKER not in stored
        assert RUNTIME not in stored
        assert RUNTIME[33:].ljust(32, b"\x00") in stored, "the scan reads the file (the init code is there)"


def test_ledger_verify_passes_on_the_sealed_database(chain: tuple[Node, str], tmp_path: Path) -> None:
    node, _ = chain
    _close(node)
    verified = run_conclave("ledger", "verify", "--data-dir", str(tmp_path), "--json", timeout=120)
    assert verified.returncode == 0, verified
    report = json.loads(verified.stdout)
    assert report["ok"] and report["transactions"] == 1 and report["stateNodes"] > 5

    shutil.move(tmp_path / "enclave", tmp_path / "elsewhere")
    missing = run_conclave("ledger", "verify", "--data-dir", str(tmp_path), timeout=120)
    assert missing.returncode == 2, missing
    assert "no ledger secrets in" in missing.stderr and "Traceback" not in missing.stderr


def test_a_node_with_other_keys_refuses_the_ledger(chain: tuple[Node, str], tmp_path: Path) -> None:
    node, _ = chain
    _close(node)
    with pytest.raises(LedgerUnreadable, match="enclave directory that wrote this ledger"):
        _node(tmp_path, enclave_dir=tmp_path / "another-enclave")
    _close(_node(tmp_path))  # its own keys still open it


def test_a_ledger_of_an_older_conclave_is_refused(chain: tuple[Node, str], tmp_path: Path) -> None:
    node, _ = chain
    with node.engine.begin() as conn:
        conn.execute(text("DELETE FROM chain_settings WHERE name = :name"), {"name": STATE_SEALING_SETTING})
    _close(node)
    with pytest.raises(LedgerUnreadable, match="^" + OLDER_LEDGER):
        _node(tmp_path)


def test_state_sealed_before_a_rotation_reads_after_a_restart(tmp_path: Path) -> None:
    node = _node(tmp_path, dev_mode=True)
    governance = to_checksum_address(GOVERNANCE_ADDRESS)
    for data in (
        function_signature_to_4byte_selector("propose((string,bytes)[])")
        + abi_encode(["(string,bytes)[]"], [[("rotate_ledger_secret", b"")]]),
        function_signature_to_4byte_selector("vote(uint256,bool)")
        + abi_encode(["uint256", "bool"], [1, True]),
    ):
        call(
            node, "eth_sendTransaction", {"from": ALICE.address, "to": governance, "data": "0x" + data.hex()}
        )
        node.ordering.seal()
    assert node.enclave.ledger_secret_version == 1  # type: ignore[attr-defined]
    call(node, "eth_sendTransaction", {"from": BOB.address, "to": ALICE.address, "value": "0x7"})
    node.ordering.seal()
    versions = {int.from_bytes(blob[:4], "big") for _, blob in node.store.state_nodes()}
    assert versions == {0, 1}
    head = node.head.number
    _close(node)

    restarted = _node(tmp_path, dev_mode=True)  # a cold cache: every node is unsealed again
    try:
        assert int(call(restarted, "eth_getBalance", BOB.address, "0x0"), 16) == 100 * ETHER
        assert int(call(restarted, "eth_getBalance", ALICE.address, hex(head)), 16) > 99 * ETHER
        assert int(call(restarted, "eth_getTransactionCount", BOB.address, "latest"), 16) == 1
    finally:
        _close(restarted)
